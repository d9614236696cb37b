"""A settings check for the sample app, in the style of the real one: one line naming the setting."""
import os


def check() -> None:
    if not os.environ.get("SAMPLE_REQUIRED_SETTING"):
        raise SystemExit("setting SAMPLE_REQUIRED_SETTING is missing: set it in local.settings.json")
