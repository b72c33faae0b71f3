"""One clock: the API, the services under it and the worker all ask the application
context for the time, so a test that moves the context's clock moves everything."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from federica.app import create_app
from federica.clock import MovableClock
from federica.config import Settings
from federica.context import make_context
from federica.worker import Worker
from tests.accounts import client_as, make_user


def test_moving_the_context_clock_moves_the_api_and_the_worker(
    settings: Settings, migrated_engine: Engine, db: object
) -> None:
    clock = MovableClock(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
    ctx = make_context(settings, engine=migrated_engine, clock=clock)
    app = create_app(settings, context=ctx)
    token = make_user(ctx, "alice", "researcher", lifetime=dt.timedelta(days=2))
    client = client_as(app, token)

    assert client.get("/api/v1/tokens").status_code == 200
    (listed,) = client.get("/api/v1/tokens").get_json()
    assert listed["expires_at"].startswith("2026-12-03T09:00")  # made at the clock's time

    clock.advance(dt.timedelta(days=2, seconds=1))  # nothing else moved: only the clock
    answer = client.get("/api/v1/tokens")
    assert answer.status_code == 401
    assert answer.content_type == "application/problem+json"

    assert Worker(ctx, provisioner=object()).now() == clock.now()  # type: ignore[arg-type]
