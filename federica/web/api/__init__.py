"""REST API v1."""

from __future__ import annotations

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

from federica.web.api import (  # noqa: E402,F401  (register)
    accounts,
    calendar,
    estop,
    login,
    monitoring,
    openapi,
    records,
    slice_metrics,
    slices,
    substrate,
    webhooks,
)
