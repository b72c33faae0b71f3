"""federica monitor"""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from federica.cli import CliState, cli, pass_state
from federica.errors import FieldError, InvalidInput


@cli.command()
@click.option(
    "--rounds", type=int, help="Poll this many times, then exit (default: until stopped)."
)
@pass_state
def monitor(state: CliState, rounds: int | None) -> None:
    """Poll every device's SNMP agent (IF-MIB, sysUpTime) each FEDERICA_MONITOR_INTERVAL_S
    seconds and store the interfaces' rates, rolled up and pruned, in the database."""
    from federica.monitoring.service import make_poller

    if rounds is not None and rounds < 1:
        raise InvalidInput([FieldError("--rounds", "must be at least 1")])
    logging.basicConfig(
        level=state.settings.log_level, format="%(asctime)s %(levelname)s %(message)s"
    )
    poller = make_poller(state.context)
    click.echo(
        f"monitor: polling every {poller.interval_s:g} s"
        + (f", {rounds} round(s)" if rounds else " (Ctrl-C stops)")
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await poller.run(stop, rounds=rounds)

    asyncio.run(main())
