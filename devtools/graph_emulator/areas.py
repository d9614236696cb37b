"""The list of Graph areas the emulator serves; each module exposes `register(app)`."""
from __future__ import annotations

from devtools.graph_emulator import (
    batch, control, delivery, events, faults, identity, organization, places, subscriptions, throttling, users,
)
from devtools.graph_emulator.app import EmulatorApp
from devtools.graph_emulator.state import World

# Guards registered first wrap the outermost: faults see a request before throttling does.
AREAS = (faults, throttling, identity, users, organization, places, events, subscriptions, delivery, batch, control)


def create_app(world: World) -> EmulatorApp:
    app = EmulatorApp(world)
    for area in AREAS:
        area.register(app)
    return app
