"""Trigger adapters, one module per family, each exposing a Blueprint `bp`.

An adapter parses its input, calls one service in sync/ and shapes the response; the rules
live in sync/. Shared clients and settings come from functions.context.
"""
