"""(in progress)"""


def register(app):
    """Adds this area's routes and guards."""
