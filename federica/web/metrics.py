"""GET /metrics: the controller's own metrics and the facility's interface counters, in
Prometheus' text format.

Who may read it: an operator's API token (monitoring.read), or the scrape token
FEDERICA_METRICS_TOKEN, which opens /metrics and the http_sd target list and nothing
else. Never anonymous: the counters show the facility's traffic.

Each app has its own registry (two apps in one process share nothing); the interface
and slice figures are read from the database on each scrape, so every process serving
the API answers the same. The HTTP request counter is this process's own.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from federica import __version__
from federica.aaa.policy import Action
from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.monitoring.exposition import MonitoringCollector
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.slicestats.exposition import SliceCollector
from federica.web.auth import guard

metrics = Blueprint("metrics", __name__)
REGISTRY_KEY = "federica.metrics"


class ControllerCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("federica", "The controller's version")
        info.add_metric([], {"version": __version__})
        yield info
        slices = GaugeMetricFamily("federica_slices", "Slices by status", labels=["status"])
        with self._sessions() as session:
            rows = session.execute(select(Slice.status, func.count()).group_by(Slice.status))
            counts = {status: n for status, n in rows}
            open_alarms = alarms.open_counts(session)
        for status in SliceStatus:
            slices.add_metric([status.value], float(counts.get(status, 0)))
        yield slices
        gauge = GaugeMetricFamily(
            "federica_alarms_open",
            "Open alarms by kind (suppressed: hidden by their device's alarm)",
            labels=["kind", "suppressed"],
        )
        for kind in Kind:
            for hidden in (False, True):
                n = open_alarms.get((kind.value, hidden), 0)
                gauge.add_metric([kind.value, str(hidden).lower()], float(n))
        yield gauge


def register_metrics(app: Flask, sessions: sessionmaker[Session]) -> None:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(ControllerCollector(sessions))
    registry.register(MonitoringCollector(sessions))
    registry.register(SliceCollector(sessions))
    requests = Counter(
        "federica_http_requests",
        "HTTP requests this process answered, by route and status",
        ["method", "endpoint", "status"],
        registry=registry,
    )

    @app.after_request
    def _count(response: Response) -> Response:
        requests.labels(
            request.method, request.endpoint or "unknown", str(response.status_code)
        ).inc()
        return response

    app.extensions[REGISTRY_KEY] = registry
    app.register_blueprint(metrics)


@metrics.get("/metrics")
@guard(Action.MONITORING_READ, scrape=True)
def prometheus_metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[REGISTRY_KEY]
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)
