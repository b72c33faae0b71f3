"""federica doctor: is this controller fit to run? Reads only; changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from cryptography import x509
from sqlalchemy import text

from federica import leader, migrate
from federica.cli import CliState, cli, pass_state
from federica.context import Context, make_context
from federica.db import transaction
from federica.federation import identity, peers
from federica.substrate import devices

OK, WARN, FAIL = "ok", "warn", "FAIL"
# A certificate that ends sooner than this is worth a warning (renewing takes a peer's
# cooperation: it must register the new CA).
CERT_WARN_DAYS = 30
# Free space on the data directory's file system (the SQLite file, gateways, emulator).
DISK_WARN_FRACTION, DISK_FAIL_BYTES = 0.10, 200 * 1024 * 1024


@dataclass
class Finding:
    status: str
    check: str
    detail: str


def _database(ctx: Context) -> Iterator[Finding]:
    path = ctx.engine.url.database or ""
    if ctx.engine.dialect.name == "sqlite" and path and not Path(path).exists():
        yield Finding(FAIL, "database", f"no database file at {path}")  # not made by looking
        return
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver says is the finding
        yield Finding(FAIL, "database", f"cannot connect: {type(exc).__name__}: {exc}"[:300])
        return
    url = ctx.engine.url.render_as_string(hide_password=True)
    yield Finding(OK, "database", f"reachable ({url})")
    current, head = migrate.current_revision(ctx.engine), migrate.head_revision(ctx.engine)
    if current == head:
        yield Finding(OK, "migrations", f"at head ({head})")
    else:
        yield Finding(
            FAIL, "migrations", f"at {current or 'none'}, head is {head}: run `federica db upgrade`"
        )


def _leaders(ctx: Context) -> Iterator[Finding]:
    if ctx.engine.dialect.name != "postgresql":
        return
    for role in ("worker", "monitor"):
        who = leader.holder(ctx.engine, role)
        if who:
            yield Finding(OK, f"{role} leader", who.removeprefix(f"federica:{role}:"))
        elif role == "worker":
            yield Finding(WARN, "worker leader", "none: is any `federica worker` running?")


def _devices(ctx: Context) -> Iterator[Finding]:
    with transaction(ctx.read_sessions) as s:
        targets = devices.targets(s, ctx.settings, None)
    if not targets:
        yield Finding(WARN, "devices", "none in the inventory")
        return
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        results = list(pool.map(lambda t: devices.check(ctx.device_drivers, t), targets))
    for r in results:
        if r.ok:
            detail = f"{r.address} {r.connect_ms} ms, host key {r.host_key}"
            yield Finding(OK, f"device {r.device}", detail)
        elif r.error:
            yield Finding(FAIL, f"device {r.device}", f"{r.address}: {r.error}")
        else:
            lacks = ", ".join(r.missing or [])
            yield Finding(FAIL, f"device {r.device}", f"{r.address}: lacks {lacks}")


def _certificate(what: str, cert: x509.Certificate, now: dt.datetime) -> Finding:
    ends = cert.not_valid_after_utc
    left = ends - now
    when = f"valid until {ends:%Y-%m-%d} ({left.days} days)"
    if cert.not_valid_before_utc > now:
        return Finding(FAIL, what, f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if left <= dt.timedelta(0):
        return Finding(FAIL, what, f"expired on {ends:%Y-%m-%d}")
    if left < dt.timedelta(days=CERT_WARN_DAYS):
        return Finding(WARN, what, when)
    return Finding(OK, what, when)


def _certificates(ctx: Context) -> Iterator[Finding]:
    now = ctx.now()
    files = identity.files_in(ctx.settings.data_dir)
    own = [("CA", files.ca_cert), ("server", files.server_cert), ("client", files.client_cert)]
    if not files.ca_cert.exists():
        yield Finding(OK, "federation identity", "none (`federica federation init` makes one)")
    else:
        for name, path in own:
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError) as exc:
                yield Finding(FAIL, f"federation {name} certificate", f"{path}: {exc}")
                continue
            yield _certificate(f"federation {name} certificate", cert, now)
    with transaction(ctx.read_sessions) as s:
        registered = [(p.name, p.ca_pem) for p in peers.listing(s)]
    for name, pem in registered:
        yield _certificate(f"peer {name} CA", x509.load_pem_x509_certificate(pem.encode()), now)


def _disk(ctx: Context) -> Iterator[Finding]:
    path = ctx.settings.data_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    free = usage.free / usage.total if usage.total else 0.0
    detail = (
        f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB ({free:.0%}) at {path}"
    )
    if usage.free < DISK_FAIL_BYTES:
        yield Finding(FAIL, "disk", detail)
    elif free < DISK_WARN_FRACTION:
        yield Finding(WARN, "disk", detail)
    else:
        yield Finding(OK, "disk", detail)


def examine(ctx: Context, *, with_devices: bool = True) -> list[Finding]:
    findings = list(_database(ctx))
    database_ok = all(f.status == OK for f in findings)
    checks: list[Callable[[Context], Iterator[Finding]]] = [_disk]
    if database_ok:  # the rest reads the database
        checks = [_leaders, *([_devices] if with_devices else []), _certificates, _disk]
    for check in checks:
        try:
            findings += list(check(ctx))
        except Exception as exc:  # one broken check must not hide the others
            name = check.__name__.strip("_")
            findings.append(Finding(FAIL, name, f"{type(exc).__name__}: {exc}"[:300]))
    return findings


@cli.command()
@click.option("--no-devices", is_flag=True, help="Do not connect to the devices.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def doctor(state: CliState, no_devices: bool, as_json: bool) -> None:
    """Check this controller: database and migrations, the worker leader, devices (reachable,
    host key, capabilities), certificates and their expiry, free disk. Changes nothing;
    exits 1 if anything failed."""
    # The database as it is: no schema check or upgrade before looking at it.
    ctx = make_context(state.settings)
    try:
        findings = examine(ctx, with_devices=not no_devices)
    finally:
        ctx.engine.dispose()
    if as_json:
        click.echo(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{f.status:<5} {f.check:<32} {f.detail}")
    if any(f.status == FAIL for f in findings):
        raise SystemExit(1)
