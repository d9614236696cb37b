"""The users area: routes `GET /users`, `/users/{id | userPrincipalName}` and `/users/delta`.

The work lives in `directory` (mutations and change log), `users_query`, `users_filter` and
`users_delta`; the names below are re-exported because seeding, the control API and tests
import them from here.
"""
from __future__ import annotations

from devtools.graph_emulator.app import EmulatorApp
from devtools.graph_emulator.directory import (
    UPDATABLE_PROPERTIES, USER_PROPERTIES, Directory, DirectoryError, LogEntry, add_room_mailbox, add_user,
    add_users_bulk, directory, disable_user, enable_user, expire_delta_tokens, hard_delete_user, restore_user,
    set_account_enabled, soft_delete_user, update_user,
)
from devtools.graph_emulator.users_delta import (
    DELTA_DEFAULT_PAGE, DELTA_MAX_FILTER_IDS, DELTA_TOKEN_LIFETIME, MAX_ROUNDS_KEPT, DeltaRound, users_delta,
)
from devtools.graph_emulator.users_filter import compile_user_filter
from devtools.graph_emulator.users_query import (
    DEFAULT_SELECT, DERIVED_PROPERTIES, MAX_PAGE, get_user, list_users, parse_select, query_string, render_user,
)

__all__ = [
    "DEFAULT_SELECT", "DELTA_DEFAULT_PAGE", "DELTA_MAX_FILTER_IDS", "DELTA_TOKEN_LIFETIME", "DERIVED_PROPERTIES",
    "MAX_PAGE", "MAX_ROUNDS_KEPT", "UPDATABLE_PROPERTIES", "USER_PROPERTIES", "DeltaRound", "Directory",
    "DirectoryError", "LogEntry", "add_room_mailbox", "add_user", "add_users_bulk", "compile_user_filter",
    "directory", "disable_user", "enable_user", "expire_delta_tokens", "get_user", "hard_delete_user",
    "list_users", "parse_select", "query_string", "register", "render_user", "restore_user",
    "set_account_enabled", "soft_delete_user", "update_user", "users_delta",
]


def register(app: EmulatorApp) -> None:
    app.route("/v1.0/users", ["GET"], list_users, name="users.list")
    # Graph accepts the function-call spelling `delta()` too; Microsoft's SDKs send that one.
    for path in ("/v1.0/users/delta", "/v1.0/users/delta()"):
        app.route(path, ["GET"], users_delta, name="users.delta")
    app.route("/v1.0/users/<user>", ["GET"], get_user, name="users.get")
