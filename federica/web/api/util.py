"""Small helpers shared by the API blueprints (they live in web.context, which the
authentication layer uses too without importing the API package)."""

from federica.web.context import ctx, read_session, write_session

__all__ = ["ctx", "read_session", "write_session"]
