"""A small FunctionApp that exercises every part of the local host; used only by its tests."""
