"""A peer's alarm kept here (kind peer-alarm) and an undelivered e-stop relay are raised
by federation's services with the slices they affect: the monitor's own evaluation
neither clears them nor overwrites their slices (nothing here holds their subject)."""

from __future__ import annotations

import json

from sqlalchemy import select

from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.alarms.models import Alarm
from federica.context import Context
from federica.db import transaction


def test_the_monitors_evaluation_keeps_federations_alarms_and_their_slices(db: Context) -> None:
    named = [{"id": 7, "name": "jp-lab", "project": "optics"}]
    with transaction(db.sessions) as s:
        for kind, subject in ((Kind.PEER_ALARM, "beta:port-down:tyo-sw:xe-2/0/0"),
                              (Kind.PEER_ESTOP, "beta:alpha-0123456789")):  # fmt: skip
            alarms.raise_service_alarm(s, kind, subject, detail="at peer beta", now=db.now(),
                                       slices=named)  # fmt: skip
    alarms.check(db)
    with db.sessions() as s:
        rows = list(s.scalars(select(Alarm).order_by(Alarm.id)))
    assert [(r.kind, r.cleared_at, json.loads(r.slices)) for r in rows] == [
        ("peer-alarm", None, named),
        ("peer-estop-undelivered", None, named),
    ]
