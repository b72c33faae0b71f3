"""federica device check | config"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict

import click

from federica.cli import CliState, cli, pass_state
from federica.db import transaction
from federica.substrate import devices, reachability
from federica.substrate.drivers import registry
from federica.substrate.drivers.base import DriverError


@cli.group()
def device() -> None:
    """Switches and routers: reachability and configuration."""


@device.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def check(state: CliState, names: tuple[str, ...], as_json: bool) -> None:
    """Connect to NAMES (default: every device): reachability, host key, capabilities."""
    with transaction(state.context.read_sessions) as s:
        targets = devices.targets(s, state.settings, list(names) or None)
    drivers = state.context.device_drivers
    results = [devices.check(drivers, t) for t in targets]
    # What was seen here is what the worker and the API show from now on; a device the
    # worker marked unreachable keeps its `since` while it still does not answer.
    with transaction(state.context.sessions) as s:
        for r in results:
            if r.ok or r.unreachable:
                reachability.record(
                    s, r.device, r.ok, state.context.now(), r.error or "", seen_by="device check"
                )
        seen = reachability.states(s, [r.device for r in results])
    if as_json:
        click.echo(
            json.dumps(
                [
                    {**asdict(r), "reachability": seen[r.device].to_json()}
                    if r.device in seen
                    else asdict(r)
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        for r in results:
            if r.ok:
                click.echo(
                    f"ok    {r.device:<10} {r.address:<22} {r.connect_ms} ms  host key {r.host_key}"
                )
            elif r.error:
                click.echo(f"FAIL  {r.device:<10} {r.address:<22} {r.error}")
            else:
                click.echo(
                    f"FAIL  {r.device:<10} {r.address:<22} lacks {', '.join(r.missing or [])}"
                )
            mark = seen.get(r.device)
            if mark is not None and not mark.reachable:
                click.echo(f"      {'':<10} {mark.describe()}")
    if not all(r.ok for r in results):
        raise SystemExit(1)


@device.command()
@click.argument("name")
@click.option(
    "--source", type=click.Choice(["running", "candidate"]), default="running", show_default=True
)
@pass_state
def config(state: CliState, name: str, source: str) -> None:
    """Show the part of NAME's configuration federica manages."""
    with transaction(state.context.read_sessions) as s:
        (target,) = devices.targets(s, state.settings, [name])
    driver = registry.create(state.context.device_drivers, target)
    try:
        driver.open()
        click.echo(driver.get_config_text(source), nl=False)  # type: ignore[arg-type]
    except DriverError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        with contextlib.suppress(DriverError):
            driver.close()
