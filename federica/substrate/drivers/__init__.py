"""Adapters to devices and compute hosts. They do I/O only and never import services."""
