"""The researcher portal in a real browser: Debian's headless chromium, driven by
Playwright, against `federica demo` (the real server, worker and emulated facility).

One researcher's whole session: sign in, build a 3-node slice in the editor, dry-run,
book, watch it become active, extend it, release it; an impossible request shows its
reason next to the offending field. Every page is screenshotted into docs/portal/ (at
1280 px, and the main ones at a phone's width), and no page may ask any host but the
server under test for anything."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import REPO
from tests.integration.conftest import host_snapshot, needs_root
from tests.integration.demo_process import Demo, running_demo
from tests.integration.portal.browsing import PHONE, browsing, chromium_installed

pytestmark = [pytest.mark.integration, pytest.mark.browser, needs_root]

SHOTS = Path(os.environ.get("FEDERICA_SCREENSHOTS", REPO / "docs" / "portal"))
# What a page's own scripts do (focus, redraws) happens after an action returns, and on a
# busy 2-core machine a while after: checks of it wait for the condition, up to this (ms).
WAIT = 15_000

if not chromium_installed():
    pytest.skip("Debian's chromium is not installed (make setup-test installs it)",
                allow_module_level=True)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    before = host_snapshot()
    with running_demo(tmp_path_factory.mktemp("portal"), "fp") as d:
        yield d
    assert "taking the emulated facility down" in d.output()
    assert host_snapshot() == before


@pytest.fixture
def page(demo: Demo) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    with browsing(demo, WAIT, seen) as pg:
        yield pg
    assert len(seen) > 20  # the hook saw the traffic


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def at_least(items: Locator, n: int) -> None:
    expect(items.nth(n - 1)).to_be_attached(timeout=WAIT)


def well_formed(page: Page) -> None:
    """What every page owes keyboard and screen-reader users, and phone screens."""
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && !e.closest('template'))
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name || e.id)"""
    )
    assert unlabelled == [], f"fields without a label: {unlabelled}"
    assert page.locator("h1").count() == 1
    width = page.viewport_size["width"] if page.viewport_size else 1280
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, "scrolls sideways"


def sign_in(page: Page, demo: Demo) -> None:
    page.goto("/slices")
    assert "/login" in page.url  # sent to sign in first
    well_formed(page)
    shot(page, "login")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill((demo.data_dir / "demo-password").read_text().strip())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/slices$"))


def fill_node(page: Page, i: int, name: str, kind: str, pop: str) -> None:
    page.fill(f"#nodes-{i}-name", name)
    page.select_option(f"#nodes-{i}-kind", kind)
    page.fill(f"#nodes-{i}-ram_mb", "256")
    page.select_option(f"#nodes-{i}-pop", pop)


def fill_circuit(page: Page, i: int, name: str, ends: str, mbps: str) -> None:
    page.fill(f"#circuits-{i}-name", name)
    page.fill(f"#circuits-{i}-endpoints", ends)
    page.fill(f"#circuits-{i}-bandwidth_mbps", mbps)


def test_a_researcher_books_watches_extends_and_releases_a_slice(
    page: Page, demo: Demo, tmp_path: Path
) -> None:
    sign_in(page, demo)
    well_formed(page)

    # Build a 3-node slice in the editor: the form starts with one empty row of each.
    page.get_by_role("link", name="New slice").first.click()
    page.fill("#name", "tri")
    fill_node(page, 0, "h1", "host", "PRG")
    page.get_by_role("button", name="Add a node").click()
    fill_node(page, 1, "h2", "host", "MIL")
    page.get_by_role("button", name="Add a node").click()
    fill_node(page, 2, "h3", "router", "ERL")
    fill_circuit(page, 0, "c12", "h1, h2", "50")
    page.get_by_role("button", name="Add a circuit").click()
    fill_circuit(page, 1, "c23", "h2, h3", "50")
    page.fill("#duration", "2h")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    page.fill("#ssh_keys", key.with_suffix(".pub").read_text())
    page.fill("#gateway_node", "h1")
    preview = page.locator("#topology-preview")
    expect(preview.locator(".p-node")).to_have_count(3, timeout=WAIT)  # drawn as typed
    expect(preview.locator("line.p-circuit")).to_have_count(2, timeout=WAIT)
    well_formed(page)
    shot(page, "editor")

    # Dry run: the mapping on the substrate and the VLANs, nothing booked.
    page.get_by_role("button", name="Dry run").click()
    result = page.locator("#result")
    expect(result.locator("#placement tbody tr")).to_have_count(3, timeout=WAIT)
    at_least(result.locator(".vlan"), 2)
    expect(result.locator(".pop.used")).to_have_count(3, timeout=WAIT)  # PRG, MIL, ERL
    # The form kept what was typed.
    expect(page.locator("#nodes-2-name")).to_have_value("h3", timeout=WAIT)
    shot(page, "dry-run")

    # Book; the slice page refreshes itself until the worker has built the slice.
    page.get_by_role("button", name="Book").click()
    page.wait_for_url(re.compile(r"/slices/tri$"))
    page.locator("#live-status .status-active").wait_for(timeout=90_000)
    expect(page.locator("tr[data-node] .status-ready")).to_have_count(3, timeout=WAIT)
    expect(page.locator("code.login")).to_have_count(3, timeout=WAIT)
    logins = page.locator("code.login").all_inner_texts()  # through the slice's gateway
    assert sorted(x.rsplit(" ", 1)[1] for x in logins) == ["h1", "h2", "h3"], logins
    assert all(x.startswith("ssh -p ") and "@127.0.0.1 " in x for x in logins), logins
    at_least(page.locator("#history li"), 3)  # scheduled, provisioning, active
    at_least(page.locator("table.timings tbody tr"), 4)
    well_formed(page)
    shot(page, "slice-active")

    # Extend by a day: "how far can I extend?" is answered on the page.
    end_before = page.get_attribute("#slice", "data-end")
    assert end_before
    expect(page.locator("#extent")).to_contain_text("Until", timeout=WAIT)
    page.select_option("#by", "1d")
    page.get_by_role("button", name="Extend").click()
    page.locator(".notice", has_text="Extended").wait_for()
    expect(page.locator("#slice")).not_to_have_attribute("data-end", end_before, timeout=WAIT)

    # Release: confirmed, taken down by the worker, the page follows it to "ended".
    page.get_by_role("button", name="Release now").click()
    page.locator("#live-status .status-ended").wait_for(timeout=90_000)
    shot(page, "slice-ended")

    # The list shows it with its state changes when ended slices are included.
    page.goto("/slices?finished=on")
    row = page.locator("tr[data-slice=tri]")
    at_least(row.locator(".timeline li"), 5)
    shot(page, "slices")


def test_an_impossible_request_is_explained_next_to_its_field(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    page.goto("/slices/new")
    page.fill("#name", "too-big")
    fill_node(page, 0, "a", "host", "PRG")
    page.get_by_role("button", name="Add a node").click()
    fill_node(page, 1, "b", "host", "MIL")
    fill_circuit(page, 0, "fat", "a, b", "5000")  # every core4 link carries 1000 Mb/s
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#circuits-0 .field-error")).to_contain_text("5000 Mb/s", timeout=WAIT)
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible(timeout=WAIT)
    # Announced: the page's script focuses the summary once the document is parsed
    # (DOMContentLoaded, after portal.js has loaded), which may be after the field's
    # error is already on screen.
    expect(summary).to_be_focused(timeout=WAIT)
    shot(page, "impossible-request")

    # A malformed field is named at the field itself.
    page.fill("#circuits-0-bandwidth_mbps", "lots")
    page.get_by_role("button", name="Dry run").click()
    field = page.locator("#circuits-0-bandwidth_mbps")
    expect(field).to_have_attribute("aria-invalid", "true", timeout=WAIT)
    expect(field).to_have_attribute(
        "aria-describedby", "circuits-0-bandwidth_mbps-error", timeout=WAIT
    )
    expect(page.locator("#circuits-0-bandwidth_mbps-error")).to_contain_text(
        "integer", timeout=WAIT
    )
    expect(summary).to_be_focused(timeout=WAIT)


def test_every_other_page_at_desktop_and_phone_width(page: Page, demo: Demo) -> None:
    sign_in(page, demo)
    for path, name in [
        ("/substrate", "substrate"),
        ("/substrate/calendar/link/prg-mil", "calendar"),
        ("/projects", "projects"),
        ("/projects/demo", "project"),
        ("/tokens", "tokens"),
    ]:
        page.goto(path)
        well_formed(page)
        shot(page, name)
    expect(page.locator("#tokens tbody tr", has_text="this browser")).to_have_count(1, timeout=WAIT)

    # Keyboard: the first Tab reaches the skip link, which lands on the content.
    page.goto("/slices/new")
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused(timeout=WAIT)
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused(timeout=WAIT)

    page.set_viewport_size(PHONE)
    for path, name in [("/slices/new", "phone-editor"), ("/substrate", "phone-substrate")]:
        page.goto(path)
        well_formed(page)
        shot(page, name)

    # Signing out revokes the session: the pages send the browser to sign in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))  # signed out, before asking for a page again
    page.goto("/slices")
    assert "/login" in page.url
