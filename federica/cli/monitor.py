"""federica monitor"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import click

from federica.cli import CliState, cli, pass_state
from federica.cli.aaa import project_group
from federica.errors import FieldError, InvalidInput
from federica.leader import Leadership


@cli.command()
@click.option(
    "--rounds", type=int, help="Poll this many times, then exit (default: until stopped)."
)
@pass_state
def monitor(state: CliState, rounds: int | None) -> None:
    """Poll every device's SNMP agent (IF-MIB, sysUpTime) each FEDERICA_MONITOR_INTERVAL_S
    seconds, store the interfaces' rates, rolled up and pruned, in the database, and
    raise and clear alarms after each round."""
    from federica.alarms.service import make_poller

    if rounds is not None and rounds < 1:
        raise InvalidInput([FieldError("--rounds", "must be at least 1")])
    logging.basicConfig(
        level=state.settings.log_level, format="%(asctime)s %(levelname)s %(message)s"
    )
    ctx = state.context
    make_poller(ctx).close()  # its settings checked before standing by
    holder = f"{socket.gethostname()}:{os.getpid()}"
    click.echo(
        f"monitor {holder}: polling every {ctx.settings.monitor_interval_s:g} s"
        + (f", {rounds} round(s)" if rounds else "")
        + " while it leads"
        + ("" if rounds else " (Ctrl-C stops)")
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        changed = asyncio.Event()
        # Several monitors may run (one per host, say): the one holding the lead polls,
        # the others stand by and take over within a lease of its death.
        leadership = Leadership(
            ctx.engine,
            "monitor",
            holder,
            ctx.settings.leader_lease_s,
            on_change=lambda _leading: _wake(loop, changed),
        )
        leadership.start()
        try:
            while not stop.is_set():
                if not leadership.leading:
                    click.echo(f"monitor {holder}: standing by (another monitor leads)")
                    await _first(stop, changed)
                    changed.clear()
                    continue
                click.echo(f"monitor {holder}: leads; polling")
                term = asyncio.Event()  # this term ends at stop or when the lead is lost

                async def watch(term: asyncio.Event = term) -> None:
                    while not stop.is_set() and leadership.leading:
                        await _first(stop, changed)
                        changed.clear()
                    term.set()

                watcher = asyncio.create_task(watch())
                try:
                    await make_poller(ctx).run(term, rounds=rounds)
                finally:
                    watcher.cancel()
                if rounds is not None:
                    break
        finally:
            await asyncio.to_thread(leadership.stop)

    asyncio.run(main())


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """Set `event` from another thread."""
    loop.call_soon_threadsafe(event.set)


async def _first(*events: asyncio.Event) -> None:
    """Until one of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


@cli.command()
@click.option("--ack", "ack", type=int, metavar="ID", help="Acknowledge alarm ID.")
@click.option("--all", "show_all", is_flag=True, help="Cleared alarms too.")
@pass_state
def alarms(state: CliState, ack: int | None, show_all: bool) -> None:
    """The open alarms (newest first), or acknowledge one (--ack ID)."""

    from federica.aaa.policy import Action
    from federica.alarms import service
    from federica.cli.auth import allow, audited
    from federica.db import transaction

    context = state.context
    if ack is not None:
        with audited(state, Action.ALARM_ACK, f"alarm {ack}"), transaction(context.sessions) as s:
            who = allow(state, Action.ALARM_ACK)
            alarm = service.acknowledge(s, ack, who.username, context.now())
            click.echo(f"alarm {alarm.id} acknowledged by {alarm.acked_by}")
        return
    allow(state, Action.MONITORING_READ)
    with transaction(context.read_sessions) as s:
        rows = [service.describe(a) for a in service.listing(s, include_cleared=show_all)]
    if not rows:
        click.echo("no alarms" if show_all else "no open alarms")
    for a in rows:
        flags = [a["state"]]
        if a["suppressed"]:
            flags.append("suppressed")
        if a["acknowledged"]:
            flags.append(f"acked by {a['acknowledged']['by']}")
        slices = ", ".join(s["name"] for s in a["slices"]) or "-"
        click.echo(
            f"{a['id']:>5}  {a['raised_at'][:19]}  {a['kind']:<18} {a['subject']:<24} "
            f"[{', '.join(flags)}]  slices: {slices}  {a['detail']}"
        )


@project_group.command(name="webhook")
@click.argument("name")
@click.option("--url", help="Set the webhook to this http(s) URL (prints a new secret, once).")
@click.option("--remove", is_flag=True, help="Remove the webhook.")
@pass_state
def project_webhook(state: CliState, name: str, url: str | None, remove: bool) -> None:
    """Project NAME's alarm webhook: show it and its latest deliveries, set it (--url), or
    --remove it (the project's leads, administrators)."""
    from federica.aaa.policy import Action
    from federica.alarms import webhooks
    from federica.cli.auth import allow, audited
    from federica.db import transaction

    if url is not None and remove:
        raise InvalidInput([FieldError("--url", "give --url or --remove, not both")])
    context = state.context
    if url is not None or remove:
        verb = "set" if url is not None else "remove"
        with audited(state, Action.WEBHOOK_MANAGE, f"project {name} webhook {verb}") as note:
            who = allow(state, Action.WEBHOOK_MANAGE, project=name)
            note["project"] = name
            with transaction(context.sessions) as s:
                if url is not None:
                    note["detail"]["url"] = url
                    hook, secret = webhooks.set_webhook(
                        s, name, url, who.username, context.now(), context.settings
                    )
                    click.echo(f"project {name}: alarms are POSTed to {hook.url}")
                    click.echo(f"secret (shown once; HMAC-SHA256 key): {secret}")
                else:
                    webhooks.remove_webhook(s, name)
                    click.echo(f"project {name}: webhook removed")
        return
    allow(state, Action.WEBHOOK_MANAGE, project=name)
    with transaction(context.read_sessions) as s:
        shown = webhooks.describe(s, webhooks.get_webhook(s, name), name)
    click.echo(f"project {name}: {shown['url']} (set {shown['set_at'][:19]} by {shown['set_by']})")
    for d in shown["deliveries"]:
        click.echo(
            f"{d['id']:>6}  alarm {d['alarm_id']:<6} {d['event']:<8} {d['state']:<9} "
            f"attempts {d['attempts']}  {d['last_error'] or d['last_status'] or ''}"
        )
