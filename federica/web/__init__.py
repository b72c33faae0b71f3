"""HTTP layer: blueprints call services; nothing imports web."""

from __future__ import annotations

from flask import Flask

from federica.web.problems import register_problem_handlers


def register_web(app: Flask) -> None:
    from federica.web.api import api

    register_problem_handlers(app)
    app.register_blueprint(api)
