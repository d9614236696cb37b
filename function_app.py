"""The Functions app: registers one Blueprint per family in functions/, nothing else.

Settings are validated here, while the host indexes the app, and a bad one raises
SettingsError (one line naming the setting). The app then loads no functions at all, which is
the safe failure: queue messages wait in their queues instead of failing five times into the
poison queues, and no timer runs half-configured. Nothing here touches the network; clients
are built on first use in functions/context.py.

Command-line starters (the local host) call sync.settings.check_settings_or_exit() before
importing this module, to print that line and exit with status 2 instead of a traceback.
"""
import azure.functions as func

from functions import (
    admin_page, api, booking_workers, context, health, openapi, reservations_api, room_workers, rooms_api, status,
    timers, webhooks, workers,
)

context.settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(api.bp)
app.register_functions(workers.bp)
app.register_functions(timers.bp)
app.register_functions(webhooks.bp)
app.register_functions(rooms_api.bp)
app.register_functions(room_workers.bp)
app.register_functions(status.bp)
app.register_functions(openapi.bp)
app.register_functions(admin_page.bp)
app.register_functions(reservations_api.bp)
app.register_functions(booking_workers.bp)
