"""infra/ and the code kept in step, and the Bicep checked as far as this machine allows.

The Bicep CLI cannot run here, so these checks read the templates as text: a small reader
(tests/support/bicep.py: comments and strings understood, brackets matched) finds declarations,
module calls, object keys and role assignments. It is not a compiler; what it cannot see (types,
expressions, what Azure accepts) is listed in the README under "What was not validated here".

The settings checks are driven by the code: every `...SETTING_NAMES` of sync/, the environment
reads anywhere in the deployed packages, and the `%SETTING%` expressions of the indexed bindings.
A setting added to the code fails here until main.bicep sets it or NOT_SET_IN_AZURE gives the
documented reason; the app's own validators then run on what main.bicep would set.
"""
from __future__ import annotations

import ast
import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools import keygen
from sync import settings as app_settings
from sync.settings import SETTING_NAMES, check_ncrontab, decode_key, load_settings
from tests.support.bicep import (
    BicepFile, Declared, array_items, matching_block, object_entries, strip_comments, unquote,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DEPLOYED_PACKAGES = ("functions", "sync", "graph")

# Settings the code knows that Azure deliberately leaves unset, each with the reason; each is
# also described in docs/operations.md (checked below).
NOT_SET_IN_AZURE = {
    "AzureWebJobsStorage": "a connection string; Azure uses the identity-based AzureWebJobsStorage__* settings",
    "GRAPH_CA_BUNDLE": "an extra CA file for the Graph emulator; Microsoft's endpoints use the public CAs",
    "REQUESTS_CA_BUNDLE": "would replace the CA store of every Graph request (read by requests, honoured by graph/http.py)",
    "CURL_CA_BUNDLE": "the same as REQUESTS_CA_BUNDLE",
}

# Settings read by the Functions host or a library, never by our code.
PLATFORM = {
    "AZURE_CLIENT_ID": "azure-identity's DefaultAzureCredential picks the user-assigned identity by it",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the host sends telemetry to this component",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "the host authenticates telemetry with the identity",
    "AzureWebJobsStorage__blobServiceUri": "the host's blob endpoint, right in national clouds too",
}

# Settings Flex Consumption refuses or ignores: the runtime and deployment live in functionAppConfig.
FLEX_REFUSED = {
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD", "WEBSITE_NODE_DEFAULT_VERSION",
}

# The built-in roles the identity holds, with their role definition ids (the same in every cloud),
# and the module whose resource each is scoped to.
ROLES = {
    "Storage Blob Data Owner": ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "storage.bicep"),
    "Storage Queue Data Contributor": ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "storage.bicep"),
    "Storage Table Data Contributor": ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "storage.bicep"),
    "Key Vault Secrets User": ("4633458b-17de-408a-b874-0445c86b69e6", "keyvault.bicep"),
    "Monitoring Metrics Publisher": ("3913510d-42f4-4e42-8a64-420c390055eb", "monitoring.bicep"),
}

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
QUEUE_NAME = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


def bicep(name: str) -> BicepFile:
    return BicepFile(INFRA / name if name == "main.bicep" else INFRA / "modules" / name)


def all_bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def app_settings_in_main() -> dict[str, str]:
    return object_entries(bicep("main.bicep").var_block("appSettings"))


def test_the_reader_understands_comments_strings_and_nesting():
    text = strip_comments("var a = { // c { \n  k: 'x // not a comment'\n  o: {\n    n: [1, 2]\n  }\n  'q-r': 2 /* { */\n}\n")
    block = matching_block(text, text.index("{"))
    assert object_entries(block) == {"k": "'x // not a comment'", "o": "{\n    n: [1, 2]\n  }", "q-r": "2"}
    with pytest.raises(ValueError, match="unbalanced"):
        matching_block("{ 'a' ", 0)


def test_every_template_parses_with_an_independent_bicep_grammar():
    """A real parser's verdict on the syntax (pycep-parser, a development requirement); the text
    checks below do not depend on it."""
    import pycep
    parser = pycep.BicepParser()
    for path in all_bicep_files():
        parsed = parser.parse(file_path=path)
        assert set(parsed["resources"]) | set(parsed.get("modules", {})), path.name
    with pytest.raises(Exception):
        parser.parse(text="param a string\nvar b = {\n  c: [1, 2\n}\n")


# ---- structure -------------------------------------------------------------------------------------

def test_main_deploys_at_subscription_scope_into_its_own_resource_group():
    main = bicep("main.bicep")
    assert re.search(r"^targetScope\s*=\s*'subscription'", main.text, re.M)
    assert main.resources_of_type("Microsoft.Resources/resourceGroups")
    for module in main.modules:
        assert object_entries(module.body).get("scope") == "rg", f"module {module.symbol} is not scoped to rg"


def test_every_module_call_passes_declared_parameters_and_all_required_ones():
    main = bicep("main.bicep")
    assert main.modules, "main.bicep calls no modules"
    for module in main.modules:
        path = INFRA / module.target
        assert path.is_file(), f"module {module.symbol}: no file {module.target}"
        declared = BicepFile(path).params
        passed = set(object_entries(object_entries(module.body)["params"]).keys())
        unknown = passed - set(declared)
        assert not unknown, f"module {module.symbol} passes parameters {module.target} does not declare: {unknown}"
        required = {name for name, param in declared.items() if param.default is None}
        assert required <= passed, f"module {module.symbol} leaves required parameters unset: {required - passed}"


def test_every_module_output_main_reads_exists():
    main = bicep("main.bicep")
    targets = {module.symbol: INFRA / module.target for module in main.modules}
    used = set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main.text))
    assert used
    for symbol, output in used:
        assert symbol in targets, f"main.bicep reads outputs of {symbol}, which is not a module"
        assert output in BicepFile(targets[symbol]).outputs, f"{targets[symbol].name} has no output {output}"


def test_every_symbol_a_file_refers_to_is_declared_in_it():
    """Catches a renamed parameter, variable, resource or module left behind somewhere."""
    for path in all_bicep_files():
        text = BicepFile(path).text
        outside_strings = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
        declared = set(re.findall(r"^(?:param|var|resource|module)\s+(\w+)", text, re.M))
        declared |= {name for group in re.findall(r"\[for\s+(?:\((\w+),\s*(\w+)\)|(\w+))\s+in\b", text)
                     for name in group if name}
        referenced = set(re.findall(r"(?<![\w.@])([A-Za-z_]\w*)!?\.(?:outputs|properties|id|name)\b", outside_strings))
        referenced |= set(re.findall(r"\$\{\s*([A-Za-z_]\w*)\b(?!\s*\()", text))
        referenced |= set(re.findall(r"^\s*(?:parent|scope):\s*([A-Za-z_]\w*)\s*$", outside_strings, re.M))
        assert referenced, path.name
        assert referenced <= declared, f"{path.name} refers to undeclared {sorted(referenced - declared)}"


def test_parameters_file_names_only_parameters_of_main():
    import json

    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    params = bicep("main.bicep").params
    assert set(values) <= set(params), f"main.parameters.json sets unknown parameters {set(values) - set(params)}"
    required = {name for name, param in params.items() if param.default is None}
    assert required <= set(values), f"main.parameters.json leaves {required - set(values)} unset"
    assert values["namePrefix"]["value"] == "${AZURE_ENV_NAME}"
    assert values["secretEncryptionKey"]["value"] == "${SECRET_ENCRYPTION_KEY}"


def test_secrets_are_secure_parameters_all_the_way_down_and_never_outputs():
    for name, path in (("secretEncryptionKey", "main.bicep"), ("secretEncryptionOldKeys", "main.bicep"),
                       ("secretEncryptionKey", "keyvault.bicep"), ("secretEncryptionOldKeys", "keyvault.bicep")):
        assert "@secure()" in bicep(path).params[name].decorators, f"{path}: {name} is not @secure()"
    for path in all_bicep_files():
        file = BicepFile(path)
        secure = {name for name, param in file.params.items() if "@secure()" in param.decorators}
        for line in re.findall(r"^output\s+.*$", file.text, re.M):
            exposed = re.sub(r"empty\(\w+\)", "", line)  # whether a value was given is no secret
            assert not secure & set(re.findall(r"\w+", exposed)), f"{path.name}: {line}"


# ---- the resources the issue asks for ----------------------------------------------------------------

def test_storage_is_reached_only_through_entra_id():
    storage = bicep("storage.bicep")
    [account] = storage.resources_of_type("Microsoft.Storage/storageAccounts")
    properties = object_entries(object_entries(account.body)["properties"])
    assert properties["allowSharedKeyAccess"] == "false"
    assert properties["allowBlobPublicAccess"] == "false"
    assert properties["minimumTlsVersion"] == "'TLS1_2'"
    assert properties["supportsHttpsTrafficOnly"] == "true"


def test_key_vault_uses_rbac_and_purge_protection_and_holds_the_encryption_key():
    vault_file = bicep("keyvault.bicep")
    [vault] = vault_file.resources_of_type("Microsoft.KeyVault/vaults")
    properties = object_entries(object_entries(vault.body)["properties"])
    assert properties["enableRbacAuthorization"] == "true"
    assert properties["enablePurgeProtection"] == "true"
    assert "accessPolicies" not in properties
    secret_names = {var: unquote(value) for var, value in
                    re.findall(r"^var\s+(\w+SecretName)\s*=\s*('[^']*')", vault_file.text, re.M)}
    assert "secret-encryption-key" in secret_names.values()
    for name in secret_names.values():
        assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", name), f"{name} is not a valid Key Vault secret name"
    for secret in vault_file.resources_of_type("Microsoft.KeyVault/vaults/secrets"):
        assert object_entries(secret.body)["name"] in secret_names, secret.symbol


def test_application_insights_sits_on_a_workspace_with_local_authentication_off():
    monitoring = bicep("monitoring.bicep")
    [component] = monitoring.resources_of_type("Microsoft.Insights/components")
    properties = object_entries(object_entries(component.body)["properties"])
    assert properties["DisableLocalAuth"] == "true"
    assert properties["WorkspaceResourceId"] == "workspace.id"
    assert monitoring.resources_of_type("Microsoft.OperationalInsights/workspaces")
    settings = app_settings_in_main()
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == \
        "'ClientId=${identity.outputs.clientId};Authorization=AAD'"


def project_python_version() -> str:
    """The major.minor the project is built for: .python-version, or the Makefile's interpreter."""
    pinned = ROOT / ".python-version"
    if pinned.is_file():
        return ".".join(pinned.read_text().strip().split(".")[:2])
    match = re.search(r"command -v python(3\.\d+)", (ROOT / "Makefile").read_text())
    assert match, "neither .python-version nor the Makefile names the project's Python version"
    return match.group(1)


def test_function_app_runs_on_flex_consumption_with_the_projects_python():
    app_file = bicep("functionapp.bicep")
    [plan] = app_file.resources_of_type("Microsoft.Web/serverfarms")
    plan_entries = object_entries(plan.body)
    assert object_entries(plan_entries["sku"]) == {"name": "'FC1'", "tier": "'FlexConsumption'"}
    assert object_entries(plan_entries["properties"])["reserved"] == "true"  # Linux
    [site] = app_file.resources_of_type("Microsoft.Web/sites")
    site_entries = object_entries(site.body)
    assert site_entries["kind"] == "'functionapp,linux'"
    assert object_entries(site_entries["identity"])["type"] == "'UserAssigned'"
    properties = object_entries(site_entries["properties"])
    assert properties["httpsOnly"] == "true"
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    config = object_entries(properties["functionAppConfig"])
    runtime = object_entries(config["runtime"])
    assert runtime["name"] == "'python'"
    assert app_file.params["pythonVersion"].default == f"'{project_python_version()}'"
    assert runtime["version"] == "pythonVersion"


def test_flex_deploys_from_a_blob_container_with_the_user_assigned_identity():
    config = object_entries(object_entries(object_entries(
        bicep("functionapp.bicep").resources_of_type("Microsoft.Web/sites")[0].body)["properties"])["functionAppConfig"])
    storage = object_entries(object_entries(config["deployment"])["storage"])
    assert storage["type"] == "'blobContainer'"
    assert storage["value"] == "deploymentContainerUrl"
    assert object_entries(storage["authentication"]) == {
        "type": "'UserAssignedIdentity'", "userAssignedIdentityResourceId": "identityId"}
    main = bicep("main.bicep")
    [call] = [m for m in main.modules if m.target == "modules/functionapp.bicep"]
    assert object_entries(object_entries(call.body)["params"])["deploymentContainerUrl"] == \
        "storage.outputs.deploymentContainerUrl"


def test_the_http_group_keeps_an_always_ready_instance_plus_the_optional_extra_ones():
    app_file = bicep("functionapp.bicep")
    scale = object_entries(object_entries(object_entries(object_entries(
        app_file.resources_of_type("Microsoft.Web/sites")[0].body)["properties"])["functionAppConfig"])["scaleAndConcurrency"])
    [always_ready] = [object_entries("{" + item + "}") for item in
                      re.findall(r"\{([^{}]*)\}", scale["alwaysReady"][1:-1])]
    assert always_ready == {"name": "'http'", "instanceCount": "httpAlwaysReadyInstances"}
    assert "@minValue(1)" in app_file.params["httpAlwaysReadyInstances"].decorators
    assert scale["instanceMemoryMB"] == "instanceMemoryMB"
    allowed = set(re.findall(r"\d+", app_file.params["instanceMemoryMB"].decorators.split("@allowed", 1)[1]))
    assert allowed <= {"512", "2048", "4096"} and app_file.params["instanceMemoryMB"].default in allowed
    main = bicep("main.bicep")
    [call] = [m for m in main.modules if m.target == "modules/functionapp.bicep"]
    assert object_entries(object_entries(call.body)["params"])["httpAlwaysReadyInstances"] == \
        "1 + extraAlwaysReadyInstances"
    assert main.params["extraAlwaysReadyInstances"].default == "0"


def test_azd_finds_the_app_by_its_service_tag_and_deploys_it_with_a_remote_build():
    azure_yaml = (ROOT / "azure.yaml").read_text()
    services = re.search(r"^services:\n((?:[ ].*\n)+)", azure_yaml, re.M).group(1)
    [name] = re.findall(r"^  (\w+):", services, re.M)
    for line in ("project: .", "language: python", "host: function", "remoteBuild: true"):
        assert f"    {line}\n" in services
    assert bicep("functionapp.bicep").params["serviceName"].default == f"'{name}'"
    assert "'azd-service-name': serviceName" in bicep("functionapp.bicep").text
    assert azure_yaml.count("devtools/keygen.py --preprovision") == 2  # posix and windows


# ---- roles -------------------------------------------------------------------------------------------

def role_assignments() -> list[tuple[str, Declared]]:
    found = []
    for path in all_bicep_files():
        for resource in BicepFile(path).resources_of_type("Microsoft.Authorization/roleAssignments"):
            found.append((path.name, resource))
    return found


def role_id_of(file: BicepFile, assignment: Declared) -> str:
    properties = object_entries(object_entries(assignment.body)["properties"])
    match = re.search(r"'Microsoft\.Authorization/roleDefinitions',\s*(\w+)\)", properties["roleDefinitionId"])
    assert match, f"{assignment.symbol}: roleDefinitionId is not a subscriptionResourceId of a role variable"
    value = re.search(rf"^var\s+{match.group(1)}\s*=\s*'([^']+)'", file.text, re.M)
    assert value, f"{assignment.symbol}: no var {match.group(1)}"
    return value.group(1)


def test_the_identity_holds_exactly_the_roles_the_issue_names_on_their_resources():
    granted: dict[str, set[str]] = {}
    for file_name, assignment in role_assignments():
        file = bicep(file_name)
        granted.setdefault(role_id_of(file, assignment), set()).add(file_name)
        entries = object_entries(assignment.body)
        properties = object_entries(entries["properties"])
        assert properties["principalType"] == "'ServicePrincipal'"
        assert properties["principalId"] == "principalId"
        assert entries["name"].startswith("guid(") and "principalId" in entries["name"]
        assert "scope" in entries, f"{assignment.symbol} has no scope (it would apply to the whole group)"
    expected = {role_id: {module} for role_id, module in ROLES.values()}
    assert granted == expected


def test_blob_data_owner_is_granted_on_containers_not_the_account():
    storage = bicep("storage.bicep")
    [owner] = [a for name, a in role_assignments()
               if name == "storage.bicep" and role_id_of(storage, a) == ROLES["Storage Blob Data Owner"][0]]
    assert object_entries(owner.body)["scope"] == "containers[i]"
    hosts = array_items(storage.var_block("hostContainerNames"))
    assert {unquote(item) for item in hosts} == {"azure-webjobs-hosts", "azure-webjobs-secrets"}
    assert "concat([deploymentContainerName], hostContainerNames)" in storage.text


def test_role_ids_are_well_formed_and_the_only_guids_in_the_templates():
    ids = {role_id for role_id, _ in ROLES.values()}
    assert all(GUID.fullmatch(role_id) for role_id in ids)
    for path in all_bicep_files():
        assert set(GUID.findall(BicepFile(path).text)) <= ids, f"{path.name} names an unexpected GUID"


# ---- settings ----------------------------------------------------------------------------------------

def environment_reads_in_code() -> set[str]:
    """Names the deployed packages read from the environment: `os.environ.get(X)`, `os.getenv(X)`,
    `environ[X]`, and helpers called with the environment and a name (`_value(environ, X)`), where X
    is a string literal or a module constant."""
    names: set[str] = set()
    for path in python_files(*DEPLOYED_PACKAGES):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = module_string_constants(tree)

        def text_of(node: ast.AST) -> str | None:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                return node.value
            if isinstance(node, ast.Name):
                return constants.get(node.id)
            return None

        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func in ("os.environ.get", "os.getenv", "environ.get") and node.args:
                    names.add(text_of(node.args[0]))
                else:
                    for first, second in zip(node.args, node.args[1:]):
                        if isinstance(first, ast.Name) and first.id == "environ":
                            names.add(text_of(second))
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
                names.add(text_of(node.slice))
    return {name for name in names if name}


def listed_setting_names() -> set[str]:
    """Every `...SETTING_NAMES` tuple a module of sync/ publishes (sync.settings, and any settings
    module of a later feature)."""
    import importlib

    names: set[str] = set()
    for path in python_files("sync"):
        if "SETTING_NAMES" not in path.read_text(encoding="utf-8"):
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for attribute in dir(module):
            if attribute.endswith("SETTING_NAMES"):
                names |= set(getattr(module, attribute))
    return names


@pytest.fixture(scope="module")
def bindings(tmp_path_factory) -> list[dict]:
    """Every binding of the app as the host indexes it (the worker's function.json), imported with
    the example settings (the emulator's CA file replaced by a throwaway PEM)."""
    import importlib
    import json

    from functions import context

    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dict(values, GRAPH_CA_BUNDLE=str(ca_file)).items():
            patch.setenv(name, value)
        context.reset()
        module = sys.modules.get("function_app")
        module = importlib.reload(module) if module else importlib.import_module("function_app")
        found = [binding for function in module.app.get_functions()
                 for binding in json.loads(function.get_function_json())["bindings"]]
    context.reset()
    return found


def trigger_setting_references(bindings: list[dict]) -> set[str]:
    """`%SETTING%` expressions in the bindings: the host resolves them, Python defaults don't apply."""
    return {name for binding in bindings for value in binding.values() if isinstance(value, str)
            for name in re.findall(r"%([A-Za-z0-9_]+)%", value)}


def code_settings() -> set[str]:
    return listed_setting_names() | environment_reads_in_code()


def test_the_code_scan_finds_what_the_settings_module_lists_and_the_environment_reads(bindings):
    assert set(SETTING_NAMES) <= listed_setting_names()
    reads = environment_reads_in_code()
    assert {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} <= reads  # os.environ.get("...")
    assert {"LOG_LEVEL", "PUBLIC_BASE_URL", "GRAPH_CA_BUNDLE"} <= reads  # _value(environ, CONSTANT)
    assert "USER_SYNC_SCHEDULE" in trigger_setting_references(bindings)


def test_every_setting_the_code_reads_is_set_in_main_or_left_unset_for_a_documented_reason():
    set_in_main = set(app_settings_in_main())
    missing = code_settings() - set_in_main - set(NOT_SET_IN_AZURE)
    assert not missing, (f"sync/settings.py (or the code) reads {sorted(missing)}, which infra/main.bicep does not "
                         "set: add it to appSettings there, or to NOT_SET_IN_AZURE here with the reason")


def test_main_sets_no_setting_the_code_and_the_platform_do_not_know():
    unknown = set(app_settings_in_main()) - code_settings() - set(PLATFORM)
    assert not unknown, f"infra/main.bicep sets {sorted(unknown)}, which nothing reads"


def test_settings_left_unset_in_azure_are_really_unset_and_documented():
    set_in_main = set(app_settings_in_main())
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name, reason in NOT_SET_IN_AZURE.items():
        assert reason
        assert name not in set_in_main, f"{name} is listed as unset in Azure but main.bicep sets it"
        assert f"`{name}`" in operations, f"docs/operations.md does not describe {name}"


def test_every_setting_a_binding_refers_to_is_set_explicitly(bindings):
    set_in_main = set(app_settings_in_main())
    needed = trigger_setting_references(bindings) | set(app_settings.DEFAULT_SCHEDULES)
    assert needed <= set_in_main, f"schedules without a setting in main.bicep: {needed - set_in_main}"


def test_flex_consumption_settings_that_moved_to_function_app_config_are_not_set():
    assert not set(app_settings_in_main()) & FLEX_REFUSED


def literal_value(main: BicepFile, expression: str) -> str | None:
    """The setting's value when it is a string literal or a parameter with a literal default."""
    expression = expression.strip()
    params = main.params
    if match := re.fullmatch(r"string\((\w+)\)", expression):
        expression = match.group(1)
    if expression in params and params[expression].default is not None:
        expression = params[expression].default.strip()
        if re.fullmatch(r"\d+", expression):
            return expression
    try:
        return unquote(expression)
    except ValueError:
        return None


# Runtime values for settings main.bicep computes from other resources: what Azure would put there.
# A new computed setting fails the test below until it gets a stand-in here.
STAND_INS = {
    "AzureWebJobsStorage__accountName": "stroomsyncab12cd34",
    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
    "AzureWebJobsStorage__blobServiceUri": "https://stroomsyncab12cd34.blob.core.windows.net/",
    "AzureWebJobsStorage__queueServiceUri": "https://stroomsyncab12cd34.queue.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://stroomsyncab12cd34.table.core.windows.net/",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000002",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD",
    "PUBLIC_BASE_URL": "https://func-roomsync-ab12cd34.azurewebsites.net",
    # Key Vault references: the app sees the secrets' values.
    "SECRET_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
    "SECRET_ENCRYPTION_OLD_KEYS": "",
}


def azure_environment() -> dict[str, str]:
    main = bicep("main.bicep")
    environment = {}
    for name, expression in app_settings_in_main().items():
        value = literal_value(main, expression)
        environment[name] = value if value is not None else STAND_INS[name]
    return environment


def test_computed_settings_have_stand_ins_and_key_vault_references_have_the_platforms_form():
    main = bicep("main.bicep")
    computed = {name for name, expression in app_settings_in_main().items() if literal_value(main, expression) is None}
    assert computed == set(STAND_INS), "update STAND_INS to the settings main.bicep computes"
    settings = app_settings_in_main()
    assert settings["SECRET_ENCRYPTION_KEY"] == "'@Microsoft.KeyVault(SecretUri=${keyVault.outputs.secretEncryptionKeyUri})'"
    assert "'@Microsoft.KeyVault(SecretUri=${keyVault.outputs.secretEncryptionOldKeysUri})'" in \
        settings["SECRET_ENCRYPTION_OLD_KEYS"]
    assert settings["PUBLIC_BASE_URL"] == "'https://${functionApp.outputs.defaultHostName}'"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == settings["AZURE_CLIENT_ID"] == "identity.outputs.clientId"


def settings_loaders():
    """Every `load_...settings(environ)` of sync/ (the app's validators, one per settings module)."""
    import importlib

    for path in python_files("sync"):
        if re.search(r"^def load_\w*settings\(", path.read_text(encoding="utf-8"), re.M):
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for name in dir(module):
                if re.fullmatch(r"load_\w*settings", name):
                    yield f"{module.__name__}.{name}", getattr(module, name)


def test_the_app_accepts_the_settings_azure_gets():
    """The app's own validators, on main.bicep's defaults with stand-ins for computed values."""
    loaders = dict(settings_loaders())
    assert "sync.settings.load_settings" in loaders
    for name, loader in loaders.items():
        assert loader(azure_environment()) is not None, name
    loaded = load_settings(azure_environment())
    assert loaded.storage.uses_identity
    assert loaded.storage.account_name == STAND_INS["AzureWebJobsStorage__accountName"]
    assert loaded.graph_authority_host == "https://login.microsoftonline.com"
    assert loaded.graph_api_base == "https://graph.microsoft.com/v1.0"
    assert loaded.public_base_url.startswith("https://") and not loaded.serves_only_this_machine
    assert loaded.graph_ca_bundle is None


def test_every_schedule_default_in_main_is_a_valid_ncrontab():
    schedules = {name: value for name, value in azure_environment().items() if name.endswith("_SCHEDULE")}
    assert len(schedules) == 4  # user sync, renewal (with the scheduled resync), recurrence, sweeper
    for name, value in schedules.items():
        assert check_ncrontab(value) == value, name


# ---- queues and tables ----------------------------------------------------------------------------

def python_files(*packages: str):
    for package in packages:
        yield from (ROOT / package).rglob("*.py")


def module_string_constants(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def queues_in_code(bindings: list[dict]) -> set[str]:
    """Queue-name constants (`..._QUEUE = "..."`) and every queue a binding reads or writes."""
    names: set[str] = set()
    for path in python_files("functions", "sync"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {value for name, value in module_string_constants(tree).items() if name.endswith("QUEUE")}
    names |= {binding["queueName"] for binding in bindings if binding["type"] in ("queueTrigger", "queue")}
    return names


def queues_in_main() -> set[str]:
    return {unquote(item) for item in array_items(bicep("main.bicep").var_block("queueNames"))}


POISON = "-poison"


def test_every_queue_the_code_names_is_created_by_the_deployment(bindings):
    """Poison queues are the exception: the host creates `<queue>-poison` when it moves the first
    message there, so only their base queue must be declared."""
    code = queues_in_code(bindings)
    assert {"user-sync", "user-events"} <= code
    declared = queues_in_main()
    missing = {name for name in code if name not in declared
               and not (name.endswith(POISON) and name[:-len(POISON)] in declared)}
    assert not missing, f"add {sorted(missing)} to queueNames in infra/main.bicep"


def test_the_deployment_creates_no_queue_the_code_does_not_know(bindings):
    unknown = queues_in_main() - queues_in_code(bindings)
    assert not unknown, f"infra/main.bicep creates queues nothing uses: {sorted(unknown)}"
    assert all(QUEUE_NAME.fullmatch(name) for name in queues_in_main())
    assert object_entries(object_entries(
        [m for m in bicep("main.bicep").modules if m.target == "modules/storage.bicep"][0].body)["params"]
    )["queueNames"] == "queueNames"


def tables_in_code() -> set[str]:
    """Every `<store>.table(NAME)` in sync/, NAME resolved to its module constant."""
    names: set[str] = set()
    for path in python_files("sync"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = module_string_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table" \
                    and len(node.args) == 1:
                argument = node.args[0]
                if isinstance(argument, ast.Constant):
                    names.add(argument.value)
                elif isinstance(argument, ast.Name) and argument.id in constants:
                    names.add(constants[argument.id])
    return names


def test_every_table_the_app_uses_is_created_by_the_app_on_first_use():
    tables = tables_in_code()
    assert {"integrations", "users", "syncstate"} <= tables
    assert all(TABLE_NAME.fullmatch(name) for name in tables)
    # Tables are only reached through sync.store.tables.Table ...
    reached = [path.relative_to(ROOT).as_posix() for path in python_files(*DEPLOYED_PACKAGES)
               if "get_table_client(" in path.read_text(encoding="utf-8")]
    assert reached == ["sync/store/tables.py"]
    # ... which Store.table opens with ensure() (create unless it exists; tested on Azurite in
    # tests/integration/test_store.py).
    catalog = ast.parse((ROOT / "sync" / "store" / "catalog.py").read_text(encoding="utf-8"))
    [store] = [node for node in catalog.body if isinstance(node, ast.ClassDef) and node.name == "Store"]
    [table_method] = [node for node in store.body if isinstance(node, ast.FunctionDef) and node.name == "table"]
    assert ".ensure()" in ast.unparse(table_method)


# ---- what is deployed ------------------------------------------------------------------------------

def test_funcignore_keeps_tools_tests_infrastructure_and_local_state_out_of_the_package():
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"devtools/", "tests/", "bench/", "infra/", "azure.yaml", ".azure/", "local.settings.json",
            ".venv/", "requirements-dev.txt"} <= ignored
    for kept in ("requirements.txt", "host.json", "function_app.py"):
        assert kept not in ignored


def test_deployed_code_imports_nothing_that_is_not_deployed():
    for path in [ROOT / "function_app.py", *python_files(*DEPLOYED_PACKAGES)]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for module in modules:
                assert module.split(".")[0] not in ("devtools", "tests", "bench"), f"{path} imports {module}"


def requirement_entries(text: str) -> list[str]:
    """requirements.txt entries with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [" ".join(line.split(" #", 1)[0].split()) for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_remote_build_installs_exactly_pinned_requirements():
    entries = requirement_entries((ROOT / "requirements.txt").read_text())
    assert entries
    for entry in entries:
        requirement, *options = entry.split()
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.]*", requirement), f"not pinned: {entry}"
        assert all(option.startswith("--hash=sha256:") for option in options), entry
    hashed = [entry for entry in entries if "--hash=" in entry]
    assert not hashed or len(hashed) == len(entries), "hashes on some requirements only: pip refuses that"
    assert requirement_entries("a==1.0 \\\n    --hash=sha256:ab\n    # via x\nb==2 # note\n") == \
        ["a==1.0 --hash=sha256:ab", "b==2"]


# ---- the key generator ------------------------------------------------------------------------------

def test_a_new_key_is_what_the_app_accepts_and_never_repeats():
    first, second = keygen.new_key(), keygen.new_key()
    assert first != second
    for key in (first, second):
        assert len(decode_key(key)) == 32
        load_settings(dict(azure_environment(), SECRET_ENCRYPTION_KEY=key))


def test_the_command_prints_one_key_and_nothing_else():
    result = subprocess.run([sys.executable, str(ROOT / "devtools" / "keygen.py")], capture_output=True,
                            text=True, check=True, timeout=30)
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    assert len(decode_key(line)) == 32


key_text = st.one_of(
    st.binary(min_size=0, max_size=48).map(lambda raw: base64.b64encode(raw).decode()),
    st.binary(min_size=0, max_size=48).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.text(alphabet="ABCDEFabcdef0123456789+/-_=", min_size=0, max_size=50),
)


@given(key_text)
def test_the_generator_and_the_app_agree_on_what_a_valid_key_is(text):
    decoded = decode_key(text) if text else None
    app_accepts = decoded is not None and len(decoded) == 32
    assert (keygen.key_problem(text) is None) == app_accepts


def test_the_preprovision_hook_needs_a_key_only_before_the_first_provision():
    key = keygen.new_key()
    [problem] = keygen.preprovision({})
    assert "SECRET_ENCRYPTION_KEY is not set" in problem and "azd env refresh" in problem
    assert keygen.preprovision({"SECRET_ENCRYPTION_KEY": key}) == []
    assert keygen.preprovision({"AZURE_KEY_VAULT_NAME": "kv-roomsync-ab12cd34"}) == []


def test_the_hook_refuses_malformed_keys_without_repeating_them():
    key, short = keygen.new_key(), base64.b64encode(os.urandom(16)).decode()
    problems = keygen.preprovision({"SECRET_ENCRYPTION_KEY": short, "AZURE_KEY_VAULT_NAME": "kv"})
    assert problems == ["SECRET_ENCRYPTION_KEY decodes to 16 bytes, not 32"]
    problems = keygen.check({"SECRET_ENCRYPTION_KEY": key, "SECRET_ENCRYPTION_OLD_KEYS": f"{keygen.new_key()}, {key},x"})
    assert problems == ["SECRET_ENCRYPTION_OLD_KEYS item 2 is the current key",
                        "SECRET_ENCRYPTION_OLD_KEYS item 3 is not base64 or base64url"]
    assert all(key not in problem and short not in problem for problem in problems)
    assert keygen.main(["--check"], {"SECRET_ENCRYPTION_KEY": short}) == 1
    assert keygen.main(["--check"], {"SECRET_ENCRYPTION_KEY": key}) == 0
