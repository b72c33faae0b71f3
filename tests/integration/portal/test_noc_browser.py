"""The operators' NOC in a real browser (Debian's headless chromium, driven by Playwright)
against `federica demo` — the real server, worker, SNMP poller and emulated facility —
with real traffic crossing a slice's circuit.

An operator sees the link the traffic crosses coloured by its measured load; a link set
down inside the emulated facility appears as an alarm on the open page without a reload,
within two polling intervals; the operator finds the slice by its VLAN on the link and
looks at the device's charts. A researcher gets 403 on every NOC page. Pages are
screenshotted into docs/noc/ and no page may ask any host but the server under test."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from federica.substrate.emulator.facility import Emulator
from federica.substrate.emulator.plan import DevicePlan, HostPlan
from tests.conftest import REPO
from tests.integration.conftest import host_snapshot, needs_root
from tests.integration.demo_process import Demo, get_json, post_json, running_demo
from tests.integration.portal.browsing import PHONE, browsing, chromium_installed

pytestmark = [pytest.mark.integration, pytest.mark.browser, needs_root]

SHOTS = Path(os.environ.get("FEDERICA_NOC_SCREENSHOTS", REPO / "docs" / "noc"))
INTERVAL_S = 3.0  # the demo's SNMP polling interval here
WAIT = 20_000  # ms: what a page's own script does shows up within this on a busy machine
OPERATOR, PASSWORD = "nora", "the operator's long passphrase"
# A link the slice does not cross, set down by hand: erl-mx's end of erl-psn.
DOWN_DEVICE, DOWN_PORT, DOWN_LINK = "erl-mx", "ge-0/0/2", "erl-psn"

if not chromium_installed():
    pytest.skip("Debian's chromium is not installed (make setup-test installs it)",
                allow_module_level=True)  # fmt: skip


def federica(demo: Demo, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FEDERICA_DATA_DIR": str(demo.data_dir)}
    env.pop("FEDERICA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "federica", *argv], input=stdin, capture_output=True,
        text=True, env=env, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    before = host_snapshot()
    env = {"FEDERICA_MONITOR_INTERVAL_S": str(INTERVAL_S)}
    with running_demo(tmp_path_factory.mktemp("noc"), "fn", env=env) as d:
        added = federica(d, "user", "add", OPERATOR, "--role", "operator", "--password-stdin",
                         stdin=PASSWORD + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        yield d
    assert host_snapshot() == before


@pytest.fixture(scope="module")
def busy_slice(demo: Demo) -> Iterator[dict[str, Any]]:
    """A 2-node slice PRG to MIL, active, with a ping flood across its circuit."""
    token = (demo.data_dir / "demo-token").read_text().strip()
    request = {
        "name": "noc-lab",
        "window": {"start": "now", "duration": "2h"},
        "nodes": [{"name": "a", "kind": "host", "pop": "PRG"},
                  {"name": "b", "kind": "host", "pop": "MIL"}],
        "circuits": [{"name": "ab", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }  # fmt: skip
    booked = post_json(f"{demo.url}/api/v1/slices", request, token)["slice"]
    url = f"{demo.url}/api/v1/slices/{booked['id']}"
    deadline = time.monotonic() + 90
    while (body := get_json(url, token))["status"] in ("scheduled", "provisioning"):
        assert time.monotonic() < deadline, demo.output()
        time.sleep(0.3)
    assert body["status"] == "active", body["history"]
    emulator = Emulator(demo.data_dir / "emulator" / demo.prefix, demo.prefix)
    node = next(n for n in body["nodes"] if n["name"] == "a")
    host: HostPlan = emulator.host(node["v_node"])
    b = next(n for n in body["nodes"] if n["name"] == "b")
    target = next(i["address"] for i in b["interfaces"] if i["circuit"] == "ab").split("/")[0]
    flood = subprocess.Popen(
        ["ip", "netns", "exec", f"{host.namespace}.s{body['id']}-a",
         "ping", "-q", "-f", "-s", "1400", "-w", "600", target],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield body | {"emulator": emulator}
    finally:
        flood.send_signal(signal.SIGINT)
        flood.wait(timeout=10)


@pytest.fixture
def page(demo: Demo) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browsing(demo, WAIT, []) as pg:
        yield pg


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/slices$"))


@contextlib.contextmanager
def port_down(emulator: Emulator) -> Iterator[None]:
    """The port set down by hand inside the facility, its device's agent (which repairs
    hand-made changes) paused meanwhile."""
    state = emulator.load_state()
    assert state is not None
    (agent,) = [p.pid for p in state.processes if p.name == f"agent {DOWN_DEVICE}"]
    plan_file = Path(state.devices[DOWN_DEVICE]["dir"]) / "plan.json"
    plan = DevicePlan.from_json(json.loads(plan_file.read_text()))
    ifname = plan.port(DOWN_PORT).ifname
    os.kill(agent, signal.SIGSTOP)
    try:
        subprocess.run(["ip", "netns", "exec", plan.namespace, "ip", "link", "set", ifname,
                        "down"], check=True)  # fmt: skip
        yield
    finally:
        subprocess.run(["ip", "netns", "exec", plan.namespace, "ip", "link", "set", ifname,
                        "up"], check=False)  # fmt: skip
        os.kill(agent, signal.SIGCONT)


def load_percent(page: Page, link: str) -> int:
    text = page.locator(f'#links tr[data-link="{link}"] td[data-col="label"]').inner_text()
    m = re.fullmatch(r"(\d+) %", text.strip())
    return int(m.group(1)) if m else -1


def test_an_operator_watches_load_and_alarms_live_and_attributes_a_vlan(
    page: Page, demo: Demo, busy_slice: dict[str, Any]
) -> None:
    (circuit,) = busy_slice["circuits"]
    crossed = [h for h in circuit["hops"] if h["link"]]
    link, vlan = crossed[0]["link"], crossed[0]["vlan"]
    sign_in(page, OPERATOR, PASSWORD)
    page.get_by_role("link", name="NOC", exact=True).click()
    page.wait_for_url(re.compile(r"/noc/$"))

    # The flood's load reaches the map without a reload (the page refreshes itself).
    deadline = time.monotonic() + 60
    while load_percent(page, link) < 1:
        assert time.monotonic() < deadline, page.content()[-3000:]
        page.wait_for_timeout(500)
    row = page.locator(f'#links tr[data-link="{link}"]')
    expect(row).to_have_class(re.compile(r"level-(ok|busy|full)"))
    expect(page.locator(f'#noc-map g[data-link="{link}"]')).to_have_class(
        re.compile(r"level-(ok|busy|full)")
    )
    rate = row.locator('td[data-col="a_to_b"]').inner_text()
    assert re.search(r"[0-9.]+ [kM]b/s", rate), rate
    # A link no traffic crosses shows no load, though it is polled.
    assert load_percent(page, "mil-psn") == 0
    shot(page, "map")

    # A link set down inside the facility: an alarm on this open page within two polls.
    expect(page.locator('#open-alarms li[data-kind="link-down"]')).to_have_count(0)
    with port_down(busy_slice["emulator"]):
        started = time.monotonic()
        alarm = page.locator('#open-alarms li[data-kind="link-down"]')
        expect(alarm).to_have_count(1, timeout=int((2 * INTERVAL_S + 10) * 1000))
        took = time.monotonic() - started
        expect(alarm).to_contain_text(DOWN_LINK)
        expect(page.locator("#alarm-count")).not_to_have_text("0")
        expect(page.locator(f'#links tr[data-link="{DOWN_LINK}"]')).to_have_class("level-down")
        shot(page, "alarm-on-map")
        page.get_by_role("link", name=re.compile(r"^Alarms")).click()
        expect(page.locator('tr[data-kind="link-down"]')).to_contain_text(DOWN_LINK)
        shot(page, "alarms")
    assert took < 2 * INTERVAL_S + 10, took

    # Attribution: the VLAN on the link, at this time, names the slice and its people.
    page.goto(f"/noc/links/{link}")
    page.get_by_role("link", name=str(vlan)).click()
    expect(page.locator('section.finding[data-slice="noc-lab"]')).to_contain_text("demo")
    shot(page, "attribution")

    # From the finding to the slice's NOC page: its traffic, then the emergency stop.
    page.locator('section.finding[data-slice="noc-lab"] h3 a').click()
    expect(page.locator("#estop-form")).to_be_visible()
    expect(page.locator("figure.chart").first).to_be_visible()
    # Its nodes' CPU is charted from their cgroups, sampled each poll.
    expect(
        page.locator('figure.chart:has-text("node a (running): CPU") path').first
    ).to_be_attached()
    page.get_by_label("Reason (the owner sees it)").fill("drill: flooding its neighbours")
    page.get_by_label("Ticket (optional)").fill("NOC-7")
    shot(page, "estop-dialog")
    page.get_by_label("Isolate this slice now").check()
    page.get_by_role("button", name="Emergency stop").click()  # the confirmation is accepted
    expect(page.locator("h1 .status")).to_have_text("shutdown")
    expect(page.locator("#estop-record")).to_contain_text("NOC-7")
    # Its traffic chart drops to zero once the poller has seen a step without traffic.
    deadline = time.monotonic() + 90
    while "rx</span> 0 b/s" not in page.content():
        assert time.monotonic() < deadline, page.locator("figure.chart").first.inner_text()
        page.wait_for_timeout(3000)
        page.reload()
    shot(page, "slice-stopped")
    page.get_by_label("Why it may run again").fill("drill over")
    page.get_by_role("button", name="Lift the stop").click()
    expect(page.locator("h1 .status")).to_have_text("active")

    # The device's page charts the port the traffic leaves by.
    first = crossed[0]
    page.goto(f"/noc/devices/{first['device']}?port={first['port']}&range=1h")
    expect(page.locator("figure.chart").first).to_be_visible()
    expect(page.locator('g.series-tx[data-series="tx"] path').first).to_be_attached()
    shot(page, "device")

    page.set_viewport_size(PHONE)
    page.goto("/noc/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    shot(page, "map-phone")


def test_a_researcher_gets_403_on_every_noc_page(page: Page, demo: Demo) -> None:
    sign_in(page, "demo", (demo.data_dir / "demo-password").read_text().strip())
    urls = ["/noc/", "/noc/state.json", "/noc/alarms", "/noc/alarms.json", "/noc/slices",
            "/noc/attribution", "/noc/maintenance", "/noc/quotas", "/noc/audit",
            "/noc/people", "/noc/devices/prg-mx", "/noc/links/prg-mil"]  # fmt: skip
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.status == 403, url
    assert page.get_by_role("link", name="NOC", exact=True).count() == 0
