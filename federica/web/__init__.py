"""HTTP layer: blueprints call services; nothing imports web."""

from __future__ import annotations

import time

from flask import Flask, g

from federica.web.inputs import register_inputs
from federica.web.problems import register_problem_handlers


def register_web(app: Flask) -> None:
    from federica.web.api import api
    from federica.web.auth import check_every_view_is_guarded, register_auth

    register_problem_handlers(app)
    register_auth(app)
    # After sign-in (it reads only the token or the session cookie, never the path,
    # query or body), so a refusal is audited as the caller's; before any view.
    register_inputs(app)

    @app.before_request
    def _arrived() -> None:
        # When the request reached the app: booking reports the time before it as "api".
        g.received = time.perf_counter()

    app.register_blueprint(api)
    from federica.web.portal import portal
    from federica.web.portal.session import SessionInterface

    app.register_blueprint(portal)
    from federica.web.noc import noc

    app.register_blueprint(noc)
    from federica.web.context import ctx_of
    from federica.web.metrics import register_metrics

    register_metrics(app, ctx_of(app).read_sessions)
    app.session_interface = SessionInterface()
    check_every_view_is_guarded(app)
