"""The device agent: follows one emulated device's running configuration into its data
plane, within milliseconds of each commit (and of a confirmed commit's automatic revert).

It is a NETCONF client of its own device like any other (SSH, host key verified), listens
for RFC 6470 notifications (netconf-config-change, netconf-confirmed-commit), re-reads the
running datastore when one arrives and at least every RESYNC_S, and reconciles.

Run as: python -m federica.substrate.emulator.agent DEVICE_DIR
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from federica.substrate.drivers.netconf.federica_l2 import parse_config
from federica.substrate.drivers.netconf.session import Endpoint, connect
from federica.substrate.emulator import dataplane
from federica.substrate.emulator.plan import DevicePlan

log = logging.getLogger("federica.emulator.agent")
# Notifications drive the agent; this periodic pass only repairs hand-made changes. Kept
# slow: netconfd checks confirm timeouts only after ~1 s without requests.
RESYNC_S = 10.0
RECONNECT_S = 0.5

_stopping = False


def _stop(_sig: int, _frame: FrameType | None) -> None:
    global _stopping
    _stopping = True
    # Leave now: the loop may be waiting RESYNC_S for a notification, and a stop that
    # waits is SIGKILLed by the emulator after 3 s (which made `down` take 3 s longer).
    # Nothing is lost: the namespace goes away, or a restarted agent reconciles.
    raise SystemExit(0)


def follow(device_dir: Path) -> None:
    meta = json.loads((device_dir / "agent.json").read_text())
    plan = DevicePlan.from_json(json.loads((device_dir / "plan.json").read_text()))
    ep = Endpoint(
        host=plan.mgmt_host,
        port=plan.netconf_port,
        username=meta["username"],
        key_filename=meta["key_file"],
        host_key_fingerprint=meta["fingerprint"],
    )
    ready = device_dir / "agent.ready"
    while not _stopping:
        try:
            mgr = connect(ep, keepalive_s=5)
        except Exception as exc:  # the server may still be starting, or restarting
            log.info("%s: NETCONF not reachable yet (%s)", plan.name, exc)
            time.sleep(RECONNECT_S)
            continue
        try:
            mgr.create_subscription()
            last = None
            while not _stopping and mgr.connected:
                log.debug("%s: reading running", plan.name)
                cfg = parse_config(mgr.get_config(source="running").data_ele)
                if cfg != last:
                    dataplane.apply(plan, cfg)
                    last = cfg
                if not ready.exists():
                    ready.write_text(str(time.time()))
                # Any notification means "look again"; their content does not matter.
                note = mgr.take_notification(block=True, timeout=RESYNC_S)
                notified = note is not None
                while note is not None:
                    note = mgr.take_notification(block=False, timeout=None)
                if not notified and last is not None:
                    # Periodic pass: also repairs hand-made changes to the namespace.
                    dataplane.apply(plan, last)
        except Exception:
            log.exception("%s: agent loop failed; reconnecting", plan.name)
            time.sleep(RECONNECT_S)
        finally:
            if not _stopping:  # a stop does not wait for the server's reply
                with contextlib.suppress(Exception):  # closing a broken session may fail too
                    mgr.close_session()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("ncclient").setLevel(logging.WARNING)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    follow(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
