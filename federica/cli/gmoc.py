"""federica gmoc collector add|list|remove: who may poll the GENI monitoring datastore."""

from __future__ import annotations

import click

from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited, echo_json
from federica.db import transaction
from federica.gmoc import collectors


@cli.group(name="gmoc")
def gmoc_group() -> None:
    """The GENI monitoring (GMOC-style) datastore: its collectors."""


@gmoc_group.group(name="collector")
def collector_group() -> None:
    """Collectors allowed to poll the datastore, and what each sees."""


@collector_group.command(name="add")
@click.argument("name")
@click.option(
    "--cert-name",
    help="The collector's client certificate names this (a SAN URI such as its URN, or the "
    "CN); the certificate must chain to FEDERICA_GMOC_TRUST_ROOTS.",
)
@click.option("--token", is_flag=True, help="Issue a collector token (shown once).")
@click.option("--project", help="See only this project's slices (default: the whole aggregate).")
@click.option("--users", is_flag=True, help="May read user objects (whole aggregate only).")
@pass_state
def collector_add(
    state: CliState,
    name: str,
    cert_name: str | None,
    token: bool,
    project: str | None,
    users: bool,
) -> None:
    """Register collector NAME."""
    allow(state, Action.USER_MANAGE)
    with (
        audited(state, "gmoc.collector.add", target=name),
        transaction(state.context.sessions) as s,
    ):
        added = collectors.add(
            s, name, cert_name=cert_name, token=token, project=project, users=users
        )
        shown = collectors.describe(added.collector)
    echo_json(shown)
    if added.token:
        click.echo(f"collector token (shown once, keep it secret): {added.token}")


@collector_group.command(name="list")
@pass_state
def collector_list(state: CliState) -> None:
    """The registered collectors."""
    allow(state, Action.USER_READ)
    with state.context.read_sessions() as s:
        echo_json([collectors.describe(c) for c in collectors.listed(s)])


@collector_group.command(name="remove")
@click.argument("name")
@pass_state
def collector_remove(state: CliState, name: str) -> None:
    """Remove collector NAME (its certificate and token stop working at once)."""
    allow(state, Action.USER_MANAGE)
    with (
        audited(state, "gmoc.collector.remove", target=name),
        transaction(state.context.sessions) as s,
    ):
        collectors.remove(s, name)
    click.echo(f"collector {name} removed")
