"""The AM API v3 calls over the slice service.

Mapping (docs/geni.md): Allocate books a local slice (the request RSpec as a slice
request, geni_start_time/geni_end_time as its window, charged to the project of the
slice's GENI authority) with its start deferred; an allocation not provisioned within
`geni_allocation_minutes` is released by an end event. Provision records the geni_users'
SSH keys for the slice's gateway. geni_start makes the deferred start due (the worker
builds the slice at max(now, window start)); geni_stop / geni_restart stop / boot the
slice's nodes. Renew extends the window; Delete releases; Shutdown is the emergency stop
(through a seam: `Shutdown`). Every sliver is a node or a circuit of the slice.

Every call returns `{code, value, output}`; a domain refusal is a code with the reason in
`output`, never an exception out of here (the caller turns a bug into SERVERERROR).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.config import Settings
from federica.errors import Conflict, FedericaError, Forbidden, InvalidInput, NotFound
from federica.geni import credentials, rspec, urns
from federica.geni.codes import Code, GeniError, answer, refusal
from federica.geni.embedding import RequestedTags, classify
from federica.geni.models import GeniSlice
from federica.geni.trust import Trust
from federica.slices import availability, events, runner, service, windows
from federica.slices.calendar import Interval
from federica.slices.embed import EmbeddingFailed
from federica.slices.lifecycle import EventKind, PartState, SliceStatus, move
from federica.slices.models import Slice, SliceEvent
from federica.slices.provision import interface_plan, node_id
from federica.slices.quota import QuotaExceeded
from federica.slices.request import SliceRequest, parse_instant
from federica.substrate.drivers.compute.base import ComputeDriver
from federica.substrate.models import ComputeHost, Pop

log = logging.getLogger(__name__)
S = SliceStatus
VERSION = "3"
ACTIONS = ("geni_start", "geni_restart", "geni_stop")
DEFAULT_SLIVER_DAYS = 1


@dataclass(frozen=True)
class Caller:
    """Who calls: the client certificate the TLS layer verified, and its URN."""

    cert: x509.Certificate
    urn: str
    address: str = ""


class Shutdown(Protocol):
    """The emergency stop of one slice, run after the call's own transaction (it opens
    its own and talks to devices): federica/geni/shutdown.py wires in federica/estop."""

    def __call__(self, slice_id: int, *, reason: str, actor: Principal) -> None: ...


def shutdown_by_status(
    session: Session, sl: Slice, *, now: dt.datetime, reason: str, actor: Principal
) -> None:
    """Without an emergency stop wired in (an Aggregate made without one): the slice
    becomes SHUTDOWN through the lifecycle (state kept, no start will run, every later
    GENI call but Describe/Status refused); nothing on the devices is touched."""
    del actor
    if sl.status in (S.SHUTDOWN, S.ENDED, S.RELEASING):
        return
    move(sl, S.SHUTDOWN, now, reason)


ComputeFactory = Callable[[str, str], ComputeDriver]  # (driver name, V-node)


@dataclass
class Aggregate:
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    now: Callable[[], dt.datetime]
    trust: Trust
    authority: str  # this facility's URN authority
    url: str  # where the AM answers (GetVersion's geni_api_versions)
    compute: ComputeFactory
    shutdown: Shutdown | None = None  # None: shutdown_by_status

    @property
    def urn(self) -> str:
        return urns.make(self.authority, "authority", "am")

    # -- the calls ------------------------------------------------------------------

    def get_version(self, caller: Caller, options: Any = None) -> dict[str, Any]:
        rspec_version = {
            "type": "GENI",
            "version": "3",
            "namespace": rspec.NS,
            "extensions": [rspec.SHARED_VLAN],
        }
        return answer(
            {
                "geni_api": 3,
                "geni_api_versions": {VERSION: self.url},
                "geni_request_rspec_versions": [
                    rspec_version | {"schema": f"{rspec.NS}/request.xsd"}
                ],
                "geni_ad_rspec_versions": [rspec_version | {"schema": f"{rspec.NS}/ad.xsd"}],
                "geni_credential_types": [{"geni_type": "geni_sfa", "geni_version": "3"}],
                # omni and jFed want integers here, not booleans.
                "geni_single_allocation": 1,
                "geni_allocate": "geni_single",
                "geni_am_type": "federica",
                "geni_am_code_version": "1",
                "urn": self.urn,
                "hrn": self.authority,
            }
        )

    def list_resources(self, caller: Caller, creds: Any, options: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            opts = _options(options)
            _rspec_version(opts)
            if "geni_slice_urn" in opts:
                raise GeniError(
                    Code.BADARGS, "ListResources with geni_slice_urn is AM API v2; use Describe"
                )
            self._credential(caller, creds, target=None, privilege="listresources")
            text = self._advertisement(available_only=_flag(opts, "geni_available"))
            return answer(_maybe_compressed(text, _flag(opts, "geni_compressed")))

        return self._guarded("ListResources", caller, run, audited=False)

    def allocate(
        self, caller: Caller, slice_urn: Any, creds: Any, rspec_text: Any, options: Any
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {"target": str(slice_urn)[:200]}

        def run() -> dict[str, Any]:
            urn = _slice_urn(slice_urn)
            opts = _options(options)
            cred = self._credential(caller, creds, target=str(urn), privilege="createsliver")
            authority = self.trust.of(urn)
            if authority is None:
                raise GeniError(Code.FORBIDDEN, f"no local project for authority {urn.authority}")
            ctx["project"] = authority.project
            parsed = rspec.parse_request(
                rspec_text if isinstance(rspec_text, str) else "",
                am_urn=self.urn,
                authority=self.authority,
                host_pops=self._host_pops(),
            )
            now = self.now()
            start, end = _window(opts, now, cred.expires)
            document = {
                "name": _local_name(urn),
                "description": f"GENI {urn}"[:500],
                "project": authority.project,
                "window": {"start": start, "end": end.isoformat()},
                "nodes": parsed.nodes,
                "circuits": parsed.circuits,
                "gateway": {"node": parsed.nodes[0]["name"]},
            }
            actor = self._principal(caller, authority.project)
            with self._writing() as s:
                self._refuse_second_allocation(s, urn)
                booked = service.book(
                    s,
                    self.settings,
                    document,
                    now=now,
                    actor=actor,
                    embedder=RequestedTags(parsed.vlans),
                )
                sl = booked.slice
                assert sl is not None
                # Again under the calendar lock the booking took: of two Allocates of one
                # slice at once, the second sees the first's.
                self._refuse_second_allocation(s, urn)
                expires = min(
                    sl.end, now + dt.timedelta(minutes=self.settings.geni_allocation_minutes)
                )
                events.defer_start(sl)
                if expires < sl.end:
                    sl.events.append(SliceEvent(kind=EventKind.END, due=expires))
                g = GeniSlice(
                    slice_id=sl.id,
                    slice_urn=str(urn),
                    user_urn=caller.urn,
                    allocation_expires=expires,
                )
                s.add(g)
                s.flush()
                ctx["slice_id"] = sl.id
                return answer(self._manifest_and_slivers(s, g))

        return self._guarded("Allocate", caller, run, ctx=ctx)

    def describe(self, caller: Caller, urn_list: Any, creds: Any, options: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            opts = _options(options)
            _rspec_version(opts)
            with self._reading() as s:
                g = self._resolve(s, urn_list)
                self._credential(caller, creds, target=g.slice_urn, privilege="sliverstatus")
                value = self._manifest_and_slivers(s, g)
                value["geni_rspec"] = _maybe_compressed(
                    value["geni_rspec"], _flag(opts, "geni_compressed")
                )
                value["geni_urn"] = g.slice_urn
                return answer(value)

        return self._guarded("Describe", caller, run, audited=False)

    def status(self, caller: Caller, urn_list: Any, creds: Any, options: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with self._reading() as s:
                g = self._resolve(s, urn_list)
                self._credential(caller, creds, target=g.slice_urn, privilege="sliverstatus")
                return answer({"geni_urn": g.slice_urn, "geni_slivers": self._slivers(g)})

        return self._guarded("Status", caller, run, audited=False)

    def renew(
        self, caller: Caller, urn_list: Any, creds: Any, expiration: Any, options: Any
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {}

        def run() -> dict[str, Any]:
            when = _instant(expiration, "expiration_time")
            with self._writing() as s:
                g = self._resolve(s, urn_list, ctx)
                cred = self._credential(caller, creds, target=g.slice_urn, privilege="renewsliver")
                self._refuse_if_shut_down(g)
                if when > cred.expires:
                    raise GeniError(
                        Code.BADARGS,
                        f"expiration_time {_stamp(when)} is after the slice expires "
                        f"({_stamp(cred.expires)}); renew the slice at its authority first",
                    )
                sl = g.slice
                deferred = events.start_deferred(sl)
                windows.extend(s, self.settings, sl, now=self.now(), to=when)
                if deferred:
                    events.defer_start(sl)
                if g.provisioned_at is None:
                    # reschedule_end moved the allocation's own end with the slice's.
                    self._end_allocation_at(sl, g.allocation_expires)
                s.flush()
                return answer(self._slivers(g))

        return self._guarded("Renew", caller, run, ctx=ctx)

    def provision(self, caller: Caller, urn_list: Any, creds: Any, options: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {}

        def run() -> dict[str, Any]:
            opts = _options(options)
            _rspec_version(opts)
            keys = _ssh_keys(opts.get("geni_users"))
            with self._writing() as s:
                g = self._resolve(s, urn_list, ctx)
                self._credential(caller, creds, target=g.slice_urn, privilege="createsliver")
                self._refuse_if_shut_down(g)
                sl = g.slice
                if sl.status is not S.SCHEDULED or not events.start_deferred(sl):
                    raise GeniError(
                        Code.UNSUPPORTED if g.provisioned_at is None else Code.ALREADYEXISTS,
                        f"the slivers are {sl.status.value}; only allocated slivers can be "
                        "provisioned (once)",
                    )
                now = self.now()
                req = SliceRequest.model_validate_json(sl.request)
                try:
                    req = SliceRequest.model_validate(
                        req.model_dump() | {"ssh_keys": sorted(set(req.ssh_keys) | set(keys))}
                    )
                except ValueError as exc:
                    raise GeniError(Code.BADARGS, f"geni_users: {exc}") from None
                sl.request = req.model_dump_json()
                g.provisioned_at = now
                for e in sl.events:  # the allocation's own end: provisioned, it stays
                    if e.kind is EventKind.END and e.done_at is None and e.due < sl.end:
                        e.done_at, e.result = now, f"{events.CANCELLED}: provisioned"
                sl.note(now, f"GENI: provisioned by {caller.urn}"[:200])
                s.flush()
                return answer(self._manifest_and_slivers(s, g))

        return self._guarded("Provision", caller, run, ctx=ctx)

    def perform_operational_action(
        self, caller: Caller, urn_list: Any, creds: Any, action: Any, options: Any
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {"detail": {"action": str(action)[:40]}}

        def run() -> dict[str, Any]:
            if action not in ACTIONS:
                raise GeniError(
                    Code.UNSUPPORTED,
                    f"action {str(action)[:40]!r} is not offered; offered: {', '.join(ACTIONS)}",
                )
            with self._writing() as s:
                g = self._resolve(s, urn_list, ctx)
                privilege = "startslice" if action == "geni_start" else "stopslice"
                if action == "geni_restart":
                    privilege = "startslice"
                self._credential(caller, creds, target=g.slice_urn, privilege=privilege)
                self._refuse_if_shut_down(g)
                if g.provisioned_at is None:
                    raise GeniError(Code.BADARGS, f"{action}: the slivers are not provisioned yet")
                sl, now = g.slice, self.now()
                if action == "geni_start":
                    if events.start_at(sl, now):
                        g.started_at = now
                        sl.note(now, f"GENI: geni_start by {caller.urn}"[:200])
                    elif g.stopped_at is not None and sl.status is S.ACTIVE:
                        self._power(sl, boot=True)
                        g.stopped_at = None
                elif sl.status is not S.ACTIVE:
                    raise GeniError(
                        Code.BUSY if sl.status in (S.SCHEDULED, S.PROVISIONING) else Code.BADARGS,
                        f"{action}: the slice is {sl.status.value}, not running",
                    )
                elif action == "geni_stop":
                    self._power(sl, boot=False)
                    g.stopped_at = now
                else:  # geni_restart
                    self._power(sl, boot=False)
                    self._power(sl, boot=True)
                    g.stopped_at = None
                s.flush()
                return answer(self._slivers(g))

        return self._guarded("PerformOperationalAction", caller, run, ctx=ctx)

    def delete(self, caller: Caller, urn_list: Any, creds: Any, options: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {}

        def run() -> dict[str, Any]:
            with self._writing() as s:
                g = self._resolve(s, urn_list, ctx)
                self._credential(caller, creds, target=g.slice_urn, privilege="deletesliver")
                self._refuse_if_shut_down(g)
                runner.request_release(s, g.slice, self.now())
                s.flush()
                return answer(
                    [
                        sliver | {"geni_allocation_status": "geni_unallocated"}
                        for sliver in self._slivers(g)
                    ]
                )

        return self._guarded("Delete", caller, run, ctx=ctx)

    def shutdown_slice(
        self, caller: Caller, slice_urn: Any, creds: Any, options: Any
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {"target": str(slice_urn)[:200]}

        def run() -> dict[str, Any]:
            urn = _slice_urn(slice_urn)
            self._credential(caller, creds, target=str(urn), privilege="shutdown")
            reason = f"GENI Shutdown by {caller.urn}"[:200]
            stop: tuple[int, Principal] | None = None
            with self._writing() as s:
                g = self._current(s, str(urn))
                if g is not None:
                    ctx["slice_id"], ctx["project"] = g.slice_id, g.slice.project
                    actor = self._principal(caller, g.slice.project)
                    if self.shutdown is None:
                        shutdown_by_status(s, g.slice, now=self.now(), reason=reason, actor=actor)
                    else:
                        stop = (g.slice_id, actor)
            if stop is not None:
                assert self.shutdown is not None
                self.shutdown(stop[0], reason=reason, actor=stop[1])
            return answer(True)  # also when already shut down, or nothing was here

        return self._guarded("Shutdown", caller, run, ctx=ctx)

    # -- pieces ---------------------------------------------------------------------

    def _guarded(
        self,
        call: str,
        caller: Caller,
        run: Callable[[], dict[str, Any]],
        *,
        ctx: dict[str, Any] | None = None,
        audited: bool = True,
    ) -> dict[str, Any]:
        """Runs a call: refusals become codes; each changing call and each refusal is
        audited under the caller's GENI URN."""
        ctx = ctx if ctx is not None else {}
        try:
            result = run()
        except GeniError as exc:
            result = refusal(exc)
        except OperationalError:
            log.warning("GENI %s: the database is busy", call, exc_info=True)
            result = refusal(GeniError(Code.BUSY, "the database is busy; try again"))
        except InvalidInput as exc:
            result = refusal(GeniError(Code.BADARGS, str(exc)))
        code = result["code"]["geni_code"]
        if audited or code != Code.SUCCESS:
            self._audit(call, caller, code, result["output"], ctx)
        return result

    def _audit(
        self, call: str, caller: Caller, code: int, output: str, ctx: dict[str, Any]
    ) -> None:
        status = {0: 200, 1: 400, 3: 403, 12: 404, 15: 410, 17: 409}.get(code, 409)
        audit.record(
            self.sessions,
            Principal(caller.urn, Role.RESEARCHER, via="geni", address=caller.address),
            f"geni.{call}",
            status=status,
            target=str(ctx.get("target", "")),
            slice_id=ctx.get("slice_id"),
            project=ctx.get("project"),
            detail={"geni_code": code, "user_urn": caller.urn, "output": output[:500]}
            | dict(ctx.get("detail", {})),
            at=self.now(),
        )

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """One transaction; the slice service's refusals become codes (and roll back)."""
        try:
            with self.sessions() as s, s.begin():
                yield s
        except EmbeddingFailed as exc:
            raise GeniError(classify(exc), str(exc)) from None
        except QuotaExceeded as exc:
            raise GeniError(Code.REFUSED, f"over the project's quota: {exc}") from None
        except Forbidden as exc:
            raise GeniError(Code.FORBIDDEN, str(exc)) from None
        except NotFound as exc:
            raise GeniError(Code.SEARCHFAILED, str(exc)) from None
        except Conflict as exc:
            raise GeniError(Code.REFUSED, str(exc)) from None
        except InvalidInput as exc:
            raise GeniError(Code.BADARGS, str(exc)) from None
        except FedericaError as exc:
            raise GeniError(Code.ERROR, str(exc)) from None

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self.read_sessions() as s:
            yield s

    def _credential(
        self, caller: Caller, creds: Any, *, target: str | None, privilege: str
    ) -> credentials.Credential:
        return credentials.first_valid(
            creds,
            roots=self.trust.roots,
            caller=caller.cert,
            now=self.now(),
            target=target,
            privilege=privilege,
        )

    def _principal(self, caller: Caller, project: str | None) -> Principal:
        projects = frozenset({project}) if project else frozenset()
        return Principal(
            caller.urn, Role.RESEARCHER, projects=projects, via="geni", address=caller.address
        )

    def _current(self, s: Session, slice_urn: str) -> GeniSlice | None:
        return s.scalars(
            select(GeniSlice)
            .join(Slice, GeniSlice.slice_id == Slice.id)
            .where(GeniSlice.slice_urn == slice_urn, Slice.status != S.ENDED)
            .order_by(GeniSlice.id.desc())
        ).first()

    def _resolve(self, s: Session, urn_list: Any, ctx: dict[str, Any] | None = None) -> GeniSlice:
        """The one slice the URNs (its slice URN or its sliver URNs) name."""
        if not isinstance(urn_list, list) or not urn_list:
            raise GeniError(Code.BADARGS, "urns: a non-empty list of a slice URN or sliver URNs")
        found: set[int] = set()
        for text in urn_list:
            urn = urns.parse(text)
            if urn is None or urn.kind not in ("slice", "sliver"):
                raise GeniError(
                    Code.BADARGS, f"urns: {str(text)[:120]!r} is not a slice or sliver URN"
                )
            g = self._current(s, str(urn)) if urn.kind == "slice" else self._by_sliver(s, urn)
            if g is None:
                raise GeniError(Code.SEARCHFAILED, f"no slivers of {urn} here")
            found.add(g.id)
        if len(found) != 1:
            raise GeniError(Code.BADARGS, "urns: name the slivers of one slice")
        g = s.get(GeniSlice, found.pop())
        assert g is not None
        if ctx is not None:
            ctx.update(target=g.slice_urn, slice_id=g.slice_id, project=g.slice.project)
        return g

    def _by_sliver(self, s: Session, urn: urns.Urn) -> GeniSlice | None:
        if urn.authority != self.authority or not urn.name.startswith("s"):
            return None
        head = urn.name[1:].split("-", 1)[0]
        if not head.isdigit():
            return None
        g = s.scalar(select(GeniSlice).where(GeniSlice.slice_id == int(head)))
        if g is None or g.slice.status is S.ENDED:
            return None
        names = {sliver["geni_sliver_urn"] for sliver in self._slivers(g)}
        return g if str(urn) in names else None

    def _refuse_second_allocation(self, s: Session, urn: urns.Urn) -> None:
        if self._current(s, str(urn)) is not None:
            raise GeniError(
                Code.ALREADYEXISTS,
                f"{urn} already has slivers here (one allocation per slice); Delete them first",
            )

    def _refuse_if_shut_down(self, g: GeniSlice) -> None:
        if g.slice.status is S.SHUTDOWN:
            raise GeniError(
                Code.REFUSED,
                f"{g.slice_urn} was shut down (emergency stop); only an operator can lift it",
            )

    def _end_allocation_at(self, sl: Slice, at: dt.datetime) -> None:
        if at < sl.end:
            sl.events.append(SliceEvent(kind=EventKind.END, due=at))

    def _power(self, sl: Slice, *, boot: bool) -> None:
        for n in sl.nodes:
            host = n.host
            driver = self.compute(host.driver, host.name)
            try:
                if boot:
                    driver.boot(node_id(sl.id, n.name))
                else:
                    driver.stop(node_id(sl.id, n.name))
            except Exception as exc:  # a driver's failure names the node; the call fails
                raise GeniError(Code.ERROR, f"node {n.name}: {exc}") from None

    def _host_pops(self) -> dict[str, str]:
        with self._reading() as s:
            rows = s.execute(
                select(ComputeHost.name, Pop.name).join(Pop, ComputeHost.pop_id == Pop.id)
            )
            return {h: p for h, p in rows}

    def _advertisement(self, *, available_only: bool) -> bytes:
        now = self.now()
        with self._reading() as s:
            free = availability.over(s, Interval(now, now + dt.timedelta(minutes=1)))
            pops = {p.name: p for p in s.scalars(select(Pop))}
            hosts = [
                rspec.AdHost(
                    h.name,
                    h.pop,
                    pops[h.pop].country if h.pop in pops else "",
                    pops[h.pop].latitude if h.pop in pops else 0.0,
                    pops[h.pop].longitude if h.pop in pops else 0.0,
                    available=h.cpu_free > 0 and not h.blocked,
                )
                for h in free.hosts
            ]
            if available_only:
                hosts = [h for h in hosts if h.available]
            links = [
                rspec.AdLink(lk.name, lk.a_device, lk.b_device, lk.free_mbps * 1000)
                for lk in free.links
                if not available_only or (lk.free_mbps > 0 and lk.vlans_free > 0)
            ]
            return rspec.advertisement(
                am_urn=self.urn, authority=self.authority, hosts=hosts, links=links, now=now
            )

    def _sliver_urn(self, sl: Slice, kind: str, name: str) -> str:
        return urns.make(self.authority, "sliver", f"s{sl.id}-{kind}-{name}")

    def _slivers(self, g: GeniSlice) -> list[dict[str, Any]]:
        sl = g.slice
        allocation = _allocation_status(g)
        expires = sl.end if g.provisioned_at is not None else min(sl.end, g.allocation_expires)
        out = []
        parts = [("node", n.name, n.state) for n in sl.nodes]
        parts += [("link", c.name, c.state) for c in sl.circuits]
        for kind, name, state in parts:
            operational, error = _operational(g, state)
            out.append(
                {
                    "geni_sliver_urn": self._sliver_urn(sl, kind, name),
                    "geni_expires": _stamp(expires),
                    "geni_allocation_status": allocation,
                    "geni_operational_status": operational,
                    "geni_error": error,
                }
            )
        return out

    def _manifest_and_slivers(self, s: Session, g: GeniSlice) -> dict[str, Any]:
        sl = g.slice
        req = SliceRequest.model_validate_json(sl.request)
        ifaces = interface_plan({c.name: c.endpoints for c in req.circuits})
        nodes = [
            rspec.ManifestNode(
                n.name,
                n.host.name,
                n.kind,
                n.image,
                self._sliver_urn(sl, "node", n.name),
                [(i, a) for i, _c, a in ifaces.get(n.name, ())],
            )
            for n in sl.nodes
        ]
        ends = {c.name: c.endpoints for c in req.circuits}
        links = []
        for c in sl.circuits:
            hops = json.loads(c.mapping)
            names = {
                node: next(i for i, circuit, _a in ifaces.get(node, ()) if circuit == c.name)
                for node in ends.get(c.name, [])
            }
            links.append(
                rspec.ManifestLink(
                    c.name,
                    self._sliver_urn(sl, "link", c.name),
                    int(hops[0]["vlan"]) if hops else 0,
                    c.bandwidth_mbps,
                    [f"{node}:{ifname}" for node, ifname in names.items()],
                )
            )
        access = json.loads(sl.access or "{}")
        login = (
            rspec.Login(str(access["host"]), int(access["port"]), str(access["user"]))
            if access.get("port")
            else None
        )
        text = rspec.manifest(
            am_urn=self.urn,
            authority=self.authority,
            nodes=nodes,
            links=links,
            login=login,
            expires=sl.end,
            now=self.now(),
        )
        return {"geni_rspec": text.decode(), "geni_slivers": self._slivers(g)}


# -- arguments ---------------------------------------------------------------------------


def _options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise GeniError(Code.BADARGS, "options: a struct")
    return options


def _flag(opts: dict[str, Any], name: str) -> bool:
    value = opts.get(name, False)
    if isinstance(value, bool | int):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise GeniError(Code.BADARGS, f"options.{name}: true or false")


def _rspec_version(opts: dict[str, Any]) -> None:
    v = opts.get("geni_rspec_version")
    if not isinstance(v, dict):
        raise GeniError(
            Code.BADARGS, "options.geni_rspec_version: required ({type: GENI, version: 3})"
        )
    if str(v.get("type", "")).lower() != "geni" or str(v.get("version", "")) != "3":
        raise GeniError(
            Code.BADVERSION,
            f"options.geni_rspec_version: {v.get('type')!r} {v.get('version')!r}; only GENI 3",
        )


def _slice_urn(text: Any) -> urns.Urn:
    urn = urns.parse(text, "slice")
    if urn is None or not urns.SLICE_NAME.match(urn.name):
        raise GeniError(Code.BADARGS, f"slice_urn: {str(text)[:120]!r} is not a GENI slice URN")
    return urn


def _local_name(urn: urns.Urn) -> str:
    """A local slice name (lower-case, at most 32) from the GENI slice name, with a short
    hash of the whole URN so two authorities' slices of one name do not collide."""
    import hashlib

    digest = hashlib.sha256(str(urn).encode()).hexdigest()[:6]
    base = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in urn.name.lower())[:19]
    return f"g-{base}-{digest}"


def _instant(value: Any, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):  # xmlrpc DateTime converted by the endpoint
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise GeniError(Code.BADARGS, f"{field}: an RFC 3339 time")
    try:
        return parse_instant(value.strip())
    except ValueError as exc:
        if "no time zone" in str(exc):  # GENI tools send UTC without a zone
            try:
                return parse_instant(value.strip() + "Z")
            except ValueError:
                pass
        raise GeniError(Code.BADARGS, f"{field}: {exc}") from None


def _window(
    opts: dict[str, Any], now: dt.datetime, slice_expires: dt.datetime
) -> tuple[str, dt.datetime]:
    start = "now"
    begin = now
    if opts.get("geni_start_time") is not None:
        begin = _instant(opts["geni_start_time"], "options.geni_start_time")
        start = begin.isoformat()
    if opts.get("geni_end_time") is not None:
        end = _instant(opts["geni_end_time"], "options.geni_end_time")
        if end > slice_expires:
            raise GeniError(
                Code.BADARGS,
                f"options.geni_end_time {_stamp(end)} is after the slice expires "
                f"({_stamp(slice_expires)})",
            )
    else:
        end = min(slice_expires, max(begin, now) + dt.timedelta(days=DEFAULT_SLIVER_DAYS))
    return start, end


def _ssh_keys(users: Any) -> list[str]:
    if not isinstance(users, list) or not users:
        raise GeniError(
            Code.BADARGS, "options.geni_users: a list of {urn, keys}; the gateway needs a key"
        )
    keys: list[str] = []
    for i, u in enumerate(users):
        if not isinstance(u, dict) or not isinstance(u.get("keys"), list):
            raise GeniError(Code.BADARGS, f"options.geni_users[{i}]: a struct with keys (a list)")
        if not all(isinstance(k, str) for k in u["keys"]):
            raise GeniError(Code.BADARGS, f"options.geni_users[{i}].keys: strings only")
        keys += u["keys"]
    if not keys:
        raise GeniError(Code.BADARGS, "options.geni_users: no SSH key; nobody could log in")
    return keys


def _maybe_compressed(text: bytes | str, compressed: bool) -> str:
    raw = text.encode() if isinstance(text, str) else text
    if compressed:
        return base64.b64encode(zlib.compress(raw)).decode()
    return raw.decode()


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _allocation_status(g: GeniSlice) -> str:
    if g.slice.status in (S.ENDED, S.RELEASING):
        return "geni_unallocated"
    return "geni_allocated" if g.provisioned_at is None else "geni_provisioned"


def _operational(g: GeniSlice, part: PartState) -> tuple[str, str]:
    sl = g.slice
    if sl.status is S.SCHEDULED:
        if g.provisioned_at is None:
            return "geni_pending_allocation", ""
        return ("geni_configuring" if g.started_at else "geni_notready"), ""
    if sl.status is S.PROVISIONING:
        return "geni_configuring", ""
    if sl.status is S.ACTIVE:
        if g.stopped_at is not None:
            return "geni_notready", ""
        return ("geni_ready" if part is PartState.READY else "geni_notready"), ""
    if sl.status is S.FAILED:
        return "geni_failed", sl.failure_reason or "failed"
    if sl.status is S.SHUTDOWN:
        return "geni_failed", "shut down (emergency stop); kept for forensics"
    if sl.status is S.RELEASING:
        return "geni_stopping", ""
    return "geni_notready", ""
