"""A local Microsoft Graph and Entra ID token endpoint, built from Graph's documented behaviour.

Never deployed. Tests and `make start` run it so the product can be exercised end to end with
no Microsoft 365 tenant. One module per Graph area; `state` holds the tenant model and `app`
the routing shared by all areas.
"""
