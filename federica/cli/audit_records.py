"""federica audit anonymous | audit archive: the counted anonymous requests, and the
audit log's retention (federica/aaa/retention.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from federica.aaa import audit, retention
from federica.aaa.policy import Action
from federica.cli import CliState, pass_state
from federica.cli.aaa import audit_group
from federica.cli.auth import allow, audited, echo_json
from federica.db import transaction
from federica.errors import FieldError, Forbidden, InvalidInput
from federica.files import write_private


def _day(raw: str | None, flag: str) -> dt.date | None:
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput([FieldError(flag, "a day, YYYY-MM-DD")]) from None


@audit_group.command(name="anonymous")
@click.option("--since", help="First day shown (YYYY-MM-DD).")
@click.option("--forget-before", help="Drop the counts of the days before this one.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def audit_anonymous(
    state: CliState, since: str | None, forget_before: str | None, as_json: bool
) -> None:
    """Anonymous requests that would have changed something (no or a bad credential, an
    unknown route), counted per day, method, route and status."""
    allow(state, Action.AUDIT_READ)
    if forget_before is not None:
        before = _day(forget_before, "--forget-before")
        assert before is not None
        with audited(state, "audit.forget_anonymous", f"before {before}") as note:
            allow(state, Action.USER_MANAGE)
            with transaction(state.context.sessions) as s:
                note["detail"]["rows"] = retention.forget_anonymous(s, before)
        click.echo(f"forgot the counts before {before}", err=True)
    with transaction(state.context.read_sessions) as s:
        rows = audit.anonymous_counts(s, _day(since, "--since"))
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['day']}  {r['method']:<7} {r['route']:<28} {r['status']}  {r['count']:>8}  "
            f"last {r['last_at'][11:19]} from {r['last_address'] or '-'}"
        )


@audit_group.command(name="archive")
@click.option("--year", type=int, required=True, help="A closed year (two or more years ago).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the year's rows here.")
@click.option("--remove", is_flag=True, help="Remove the year, once archived (with --sha256).")
@click.option("--sha256", "digest", help="The archive's digest, as printed by the export.")
@pass_state
def audit_archive(
    state: CliState, year: int, out: Path | None, remove: bool, digest: str | None
) -> None:
    """Archive a closed year of the audit log (--out FILE), then remove exactly those rows
    (--remove --sha256 DIGEST; the operators' console on the schema owner's database role)."""
    allow(state, Action.AUDIT_READ)
    retention.check_closed(year, state.context.now())
    if out is None and not remove:
        raise InvalidInput([FieldError("--out", "say where to write the archive (or --remove)")])
    if out is not None:
        if out.exists():
            raise InvalidInput([FieldError("--out", f"{out} exists; an archive is never replaced")])
        with transaction(state.context.read_sessions) as s:
            text, sha, count = retention.export(s, year)
        write_private(out, text)
        click.echo(f"{count} entries of {year} written to {out}")
        click.echo(f"sha256 {sha}")
    if remove:
        if not digest:
            raise InvalidInput([FieldError("--sha256", "the digest of the archived file")])
        with audited(state, "audit.archive", f"audit {year}") as note:
            if state.principal.user_id is not None:
                raise Forbidden("only the operators' console removes archived years")
            with transaction(state.context.sessions) as s:
                count = retention.remove_year(s, year, digest, state.context.now())
            note["detail"] |= {"year": year, "entries": count, "sha256": digest}
        click.echo(
            f"{count} entries of {year} removed; the archive with sha256 {digest} holds them"
        )
