"""`federica monitor` end to end: the inventory's device polled over SNMP from a real agent
with credentials from a set file and the environment, rates in the database (both
backends), a device without SNMP credentials named and skipped."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from federica.cli import cli
from federica.cli import main as _register  # noqa: F401
from federica.context import Context
from federica.monitoring.models import InterfaceRate, MonitoredDevice, MonitoredInterface
from tests.helpers import table_dump
from tests.integration.monitoring.conftest import COMMUNITY, Agent


def topology(port: int) -> str:
    return f"""
pops:
- {{name: LAB, country: CZ, role: core, location: {{lat: 50.0, lon: 14.0}}}}
devices:
- name: lab-sw
  pop: LAB
  kind: switch
  driver: ietf
  management: {{host: 127.0.0.1, port: {port}}}
  credentials: lab
  ports:
  - {{name: ge-0/0/0, speed_mbps: 1000}}
- name: far-sw
  pop: LAB
  kind: switch
  driver: ietf
  management: {{host: 127.0.0.1, port: 9}}
  credentials: no-snmp-set
  ports:
  - {{name: ge-0/0/0, speed_mbps: 1000}}
"""


def run(env: dict[str, str], *args: str) -> Result:
    import federica.cli.monitor
    import federica.cli.substrate  # noqa: F401

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_monitor_polls_the_inventory_and_stores_rates(
    agent: Agent, cli_env: dict[str, str], db: Context, tmp_path: Path
) -> None:
    topo = tmp_path / "lab.yaml"
    topo.write_text(topology(agent.port))
    assert run(cli_env, "substrate", "load", str(topo)).exit_code == 0
    sets = tmp_path / "snmp.yaml"
    sets.write_text("lab: {community_env: LAB_COMMUNITY, port: null}\n")
    env = {
        **cli_env,
        "FEDERICA_SNMP_CREDENTIALS_FILE": str(sets),
        "LAB_COMMUNITY": COMMUNITY,
        "FEDERICA_MONITOR_INTERVAL_S": "1",
        "FEDERICA_SNMP_TIMEOUT_S": "10",
    }
    r = run(env, "monitor", "--rounds", "3")
    assert r.exit_code == 0, r.output
    assert "polling every 1 s, 3 round(s)" in r.output
    with db.read_sessions() as s:
        (iface,) = s.scalars(select(MonitoredInterface)).all()
        rates = s.scalars(select(InterfaceRate)).all()
        (state,) = s.scalars(select(MonitoredDevice)).all()
    assert iface.name == "ge-0/0/0" and iface.port_id is not None and iface.alias == "to erl"
    # Three polls, two intervals: the agent's counters stood still.
    assert len(rates) == 2 and all(r.in_octets == 0 and r.covered_s > 0.5 for r in rates)
    assert state.consecutive_failures == 0 and state.last_ok_at is not None


def test_bad_rounds_and_settings_are_named(cli_env: dict[str, str], db: Context) -> None:
    before = table_dump(db)
    r = run(cli_env, "monitor", "--rounds", "0")
    assert r.exit_code == 2 and "--rounds" in r.output
    r = run({**cli_env, "FEDERICA_MONITOR_INTERVAL_S": "0"}, "monitor", "--rounds", "1")
    assert r.exit_code == 1 and "FEDERICA_MONITOR_INTERVAL_S" in r.output
    r = run({**cli_env, "FEDERICA_SNMP_RETRIES": "many"}, "monitor")
    assert r.exit_code != 0 and "FEDERICA_SNMP_RETRIES" in r.output
    assert table_dump(db) == before
