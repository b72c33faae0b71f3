"""Slices: request format, calendar, embedding, lifecycle, provisioning."""
