"""federica federation init|show; federica peer add|update|list|remove|show-advertisement"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from federica.aaa.policy import Action
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import allow, audited, echo_json
from federica.db import transaction
from federica.errors import FieldError
from federica.federation import identity, peers
from federica.federation.agreement import Form, Operation
from federica.federation.client import PeerClient, PeerError
from federica.slices.request import load_document

F = TypeVar("F", bound=Callable[..., Any])
FORMS = click.Choice([f.value for f in Form])
OPERATIONS = click.Choice([o.value for o in Operation])


@cli.group(name="federation")
def federation_group() -> None:
    """This facility's federation identity (its CA and certificates)."""


@federation_group.command(name="init")
@click.option("--name", required=True, help="This facility's name, e.g. 'federica-eu'.")
@click.option("--authority", required=True, help="Its URN authority, e.g. 'federica.eu'.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=["127.0.0.1", "localhost"],
    show_default=True,
    help="A name or address peers reach the peer API at (repeat).",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing identity (peers must re-register)."
)
@pass_state
def federation_init(
    state: CliState, name: str, authority: str, hosts: tuple[str, ...], force: bool
) -> None:
    """Make the facility CA and the peer API's server and client certificates."""
    allow(state, Action.USER_MANAGE)
    with audited(state, "federation.init", target=name):
        facility = identity.init(
            state.settings.data_dir,
            name,
            authority,
            hosts=list(hosts),
            now=state.context.now(),
            force=force,
        )
    _show(facility)


@federation_group.command(name="show")
@pass_state
def federation_show(state: CliState) -> None:
    """This facility's name, URN and CA (what a peer registers)."""
    _show(identity.load(state.settings.data_dir))


def _show(facility: identity.Facility) -> None:
    ca = identity.parse_pem(facility.ca_pem, "ca")
    click.echo(f"facility {facility.name} ({facility.urn})")
    click.echo(f"CA certificate {facility.files.ca_cert} (give it to each peer)")
    click.echo(f"CA fingerprint {identity.fingerprint(ca)}")


@cli.group(name="peer")
def peer_group() -> None:
    """Trusted peer facilities and their agreements."""


def _agreement(
    url: str | None,
    form: str | None,
    ca: Path | None,
    allowed: tuple[str, ...],
    pops: str | None,
    borders: tuple[str, ...],
    guest_quota: int | None,
) -> tuple[peers.Agreement, list[FieldError]]:
    """The agreement the options say, and the problems only the CLI sees (files)."""
    ca_pem, problems = None, []
    if ca is not None:
        try:
            ca_pem = ca.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(FieldError("ca", f"cannot read {ca}: {exc}"))
    mapping: dict[str, str] | None = None
    if borders:
        mapping = {}
        for spec in borders:
            # A spec without "=" maps to "", which the service refuses with the rest.
            local, _, remote = spec.partition("=")
            mapping[local] = remote
    agreement = peers.Agreement(
        url=url,
        form=form,
        ca_pem=ca_pem,
        allowed=list(allowed) if allowed else None,
        pops=[p for p in pops.split(",") if p] if pops is not None else None,
        borders=mapping,
        guest_quota=guest_quota,
    )
    return agreement, problems


def _agreement_options(fn: F) -> F:
    for option in reversed(
        [
            click.option(
                "--allow",
                "allowed",
                type=OPERATIONS,
                multiple=True,
                help="An operation granted (repeat); default: all the form allows.",
            ),
            click.option("--pops", help="PoPs the peer may see, comma-separated; '' = all."),
            click.option(
                "--border",
                "borders",
                multiple=True,
                help="LOCAL=REMOTE: a border port and the peer's port on the other side.",
            ),
            click.option("--guest-quota", type=int, help="Concurrent bookings of its guests."),
        ]
    ):
        fn = option(fn)
    return fn


@peer_group.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option("--ca", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--form", type=FORMS, required=True)
@_agreement_options
@pass_state
def peer_add(
    state: CliState,
    name: str,
    url: str,
    ca: Path,
    form: str,
    allowed: tuple[str, ...],
    pops: str | None,
    borders: tuple[str, ...],
    guest_quota: int | None,
) -> None:
    """Trust the peer facility NAME whose API is at URL and whose CA is --ca."""
    allow(state, Action.USER_MANAGE)
    agreement, problems = _agreement(url, form, ca, allowed, pops, borders, guest_quota)
    with (
        audited(state, "federation.peer.add", target=name),
        transaction(state.context.sessions) as session,
    ):
        echo_json(peers.describe(peers.add(session, name, agreement, problems)))


@peer_group.command(name="update")
@click.argument("name")
@click.option("--url")
@click.option(
    "--ca", type=click.Path(path_type=Path, dir_okay=False), help="Its new CA (rotation)."
)
@click.option("--form", type=FORMS)
@_agreement_options
@pass_state
def peer_update(
    state: CliState,
    name: str,
    url: str | None,
    ca: Path | None,
    form: str | None,
    allowed: tuple[str, ...],
    pops: str | None,
    borders: tuple[str, ...],
    guest_quota: int | None,
) -> None:
    """Change a peer's agreement or rotate its CA (certificates of the old CA are refused
    from the next connection on)."""
    allow(state, Action.USER_MANAGE)
    agreement, problems = _agreement(url, form, ca, allowed, pops, borders, guest_quota)
    with (
        audited(state, "federation.peer.update", target=name),
        transaction(state.context.sessions) as session,
    ):
        echo_json(peers.describe(peers.update(session, name, agreement, problems)))


@peer_group.command(name="list")
@pass_state
def peer_list(state: CliState) -> None:
    """The trusted peers and their agreements."""
    with state.context.read_sessions() as session:
        echo_json([peers.describe(p) for p in peers.listing(session)])


@peer_group.command(name="remove")
@click.argument("name")
@pass_state
def peer_remove(state: CliState, name: str) -> None:
    """Stop trusting a peer; its requests are refused at once (no restart)."""
    allow(state, Action.USER_MANAGE)
    with (
        audited(state, "federation.peer.remove", target=name),
        transaction(state.context.sessions) as session,
    ):
        peers.remove(session, name)
    click.echo(f"peer {name} removed")


@peer_group.command(name="show-advertisement")
@click.argument("name")
@pass_state
def peer_show_advertisement(state: CliState, name: str) -> None:
    """Ask the peer NAME what it offers this facility (over mutual TLS)."""
    client = _client_for(state, name)
    try:
        echo_json(client.advertisement())
    except PeerError as exc:
        raise click.ClickException(f"peer {name}: {exc}") from None


def _client_for(state: CliState, name: str) -> PeerClient:
    facility = identity.load(state.settings.data_dir)
    with state.context.read_sessions() as session:
        peer = peers.get(session, name)
        return PeerClient(
            peer.url, peer.ca_pem, facility.files.client_cert, facility.files.client_key
        )


@peer_group.command(name="show-availability")
@click.argument("name")
@click.option("--start", required=True, help="ISO 8601 time with a zone (or 'now').")
@click.option("--end", required=True, help="ISO 8601 time with a zone.")
@pass_state
def peer_show_availability(state: CliState, name: str, start: str, end: str) -> None:
    """What is free at the peer NAME over a window (the PoPs it lets this facility see)."""
    if start == "now":
        start = state.context.now().isoformat()
    try:
        echo_json(_client_for(state, name).availability(start, end))
    except PeerError as exc:
        raise click.ClickException(f"peer {name}: {exc}") from None


@peer_group.command(name="find-slot")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--after", help="ISO 8601 time with a zone: the earliest start.")
@pass_state
def peer_find_slot(state: CliState, name: str, file: Path, after: str | None) -> None:
    """The earliest window at the peer NAME for the request in FILE (every node pinned
    to one of its PoPs, without the peer's prefix); books nothing."""
    try:
        document = load_document(file.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"{file}: {exc.strerror}") from None
    try:
        echo_json(_client_for(state, name).find_slot(document, after))
    except PeerError as exc:
        raise click.ClickException(f"peer {name}: {exc}") from None


@peer_group.command(name="alarms")
@click.argument("name")
@pass_state
def peer_alarms(state: CliState, name: str) -> None:
    """The peer NAME's open alarms on the border facing this facility and on the parts of
    this facility's slices there (`local_slices`)."""
    from federica.federation import remote

    try:
        echo_json(remote.peer_alarms(state.context.read_sessions, state.settings, name))
    except PeerError as exc:
        raise click.ClickException(f"peer {name}: {exc}") from None


@contextmanager
def peer_listener(state: CliState, host: str, port: int) -> Iterator[None]:
    """Serves the peer API over mutual TLS on `port` (0: not at all) while the body runs."""
    if not port:
        yield
        return
    from federica.app import federation_server
    from federica.cli.serve import serving

    banner = f"federation peer API on https://{host}:{port}/federation/v1 (mutual TLS)"
    with serving(federation_server(state.context, host, port), "federation-listener", banner):
        yield
