"""The operators' NOC in the browser: the facility at a glance (map, device health, link
load), alarms, slices, attribution, and device and link pages with their charts.

Operators and admins only (Action.MONITORING_READ and, per page, what it changes); a
researcher gets 403 on every page. Same sign-in, CSRF check, Content-Security-Policy and
templates as the researcher portal: it is the portal's operator half."""

from __future__ import annotations

from flask import Blueprint

from federica.web.noc.charts import human
from federica.web.portal import serve_pages

noc = Blueprint(
    "noc",
    __name__,
    url_prefix="/noc",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

noc.add_app_template_global(human, "human")


serve_pages(noc)


from federica.web.noc import (  # noqa: E402,F401  (register the pages)
    pages_alarms,
    pages_facility,
    pages_operations,
    pages_people,
    pages_slice,
)
