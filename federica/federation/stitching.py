"""Stitching a circuit at a border port: which VLAN tags each side can use there, and an
embedder that routes a circuit from a local node to the border port.

A circuit across the border is, on each side, a circuit between a local node and the
border port facing the peer. The border link carries one tag, the same at both of its
ends, so the tag comes from the intersection of what both sides have free there. Inside a
facility the circuit keeps that tag on every hop, unless the border port may translate
(`translate: true`; its device rewrites tags): then the inside uses any tag and the
device rewrites it to the border tag.

Pure apart from reading the calendar index it is given (under the calendar lock, when it
embeds for a booking).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federica.errors import Conflict, FieldError, InvalidInput
from federica.slices.calendar import Interval
from federica.slices.embed import (
    Embedder,
    Embedding,
    EmbeddingFailed,
    HostCap,
    SubstrateView,
    TagPool,
)
from federica.slices.index import BorderInfo, CalendarIndex
from federica.slices.request import CircuitRequest, NodeKind, NodeRequest, SliceRequest
from federica.slices.service import DEFAULT_EMBEDDER

_RANGES = re.compile(r"^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$")
PSEUDO_PREFIX = "~border"


def format_tags(tags: Iterable[int]) -> str:
    """{3000, 3001, 3002, 3005} -> '3000-3002,3005' ('' if none)."""
    out: list[str] = []
    run: list[int] = []
    for t in sorted(set(tags)):
        if run and t == run[-1] + 1:
            run.append(t)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [t]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def parse_tags(text: Any, where: str) -> frozenset[int]:
    """'3000-3002,3005' -> the tags; a 422 naming `where` if malformed."""
    if not isinstance(text, str) or not _RANGES.match(text):
        raise InvalidInput([FieldError(where, "VLAN tags as '100-199,205' (1 to 4094)")])
    tags: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not 1 <= a <= b <= 4094:
            raise InvalidInput([FieldError(where, f"{part}: tags are 1 to 4094, low to high")])
        tags.update(range(a, b + 1))
    return frozenset(tags)


def tags_of(pool: TagPool) -> frozenset[int]:
    return frozenset(t for t in range(pool.lo, pool.hi + 1) if t not in pool.taken)


@dataclass(frozen=True)
class BorderEnd:
    """One circuit's end at a border port on this side: from `node` (here) to the port."""

    circuit: str
    node: str
    device: str
    port: str
    bandwidth_mbps: int
    # The border tags this side may choose among (None: any it has free there).
    allowed: frozenset[int] | None = None

    @property
    def label(self) -> str:
        return f"{self.device}:{self.port}"


def border_of(index: CalendarIndex, label: str) -> BorderInfo | None:
    sub = index.substrate
    device, _, port = label.partition(":")
    return None if sub is None else sub.borders.get((device, port))


def free_at(
    index: CalendarIndex, border: BorderInfo, window: Interval, exclude: int | None = None
) -> tuple[int, frozenset[int]]:
    """Mb/s and tags free at a border port over the window (within its agreed range)."""
    bw, pool = index.port_free(
        border.port_id, border.speed, (border.vlan_min, border.vlan_max), window, exclude
    )
    return bw, tags_of(pool)


class NoCommonTag(Conflict):
    """No tag is free at both ends of the border (or along this side's path): the refusal
    names the hop and the tags each side had free."""

    type_slug = "no-common-vlan"
    title = "No common VLAN tag at the border"

    def __init__(
        self, hop: str, offered: frozenset[int], free: frozenset[int], field: str, why: str
    ) -> None:
        self.hop, self.offered, self.free = hop, offered, free
        super().__init__(
            f"circuit across the border at {hop}: {why} (offered {format_tags(offered) or 'none'};"
            f" free here {format_tags(free) or 'none'})",
            errors=[FieldError(field, why).as_dict()],
            hop=hop,
            offered=format_tags(offered),
            free=format_tags(free),
        )


class StitchingEmbedder:
    """The inner embedder with each border end as a pseudo node, pinned to a pseudo V-node
    whose uplink is the border port (its free Mb/s and the allowed tags): the circuit is
    then routed like any other, its last hop the border port with the border tag. The
    pseudo nodes are dropped from the placement afterwards."""

    def __init__(
        self,
        index: CalendarIndex,
        window: Interval,
        ends: Sequence[BorderEnd],
        inner: Embedder = DEFAULT_EMBEDDER,
        peer: str | None = None,
    ) -> None:
        self.index, self.window, self.ends, self.inner = index, window, list(ends), inner
        self.peer = peer  # the border ports must face this peer (the visited side)
        # circuit -> the border tag chosen (after embed)
        self.chosen: dict[str, int] = {}

    def embed(self, request: SliceRequest, view: SubstrateView) -> Embedding:
        hosts: dict[str, HostCap] = dict(view.hosts)
        nodes = list(request.nodes)
        circuits = list(request.circuits)
        rewrite: dict[str, tuple[BorderEnd, frozenset[int]]] = {}
        wrong = [
            FieldError(f"borders[{i}].port", f"{end.label} is not a border port facing {self.peer}")
            for i, end in enumerate(self.ends)
            if (b := border_of(self.index, end.label)) is None
            or (self.peer is not None and b.peer != self.peer)
        ]
        if wrong:
            raise InvalidInput(wrong)
        for i, end in enumerate(self.ends):
            border = border_of(self.index, end.label)
            assert border is not None, end.label
            bw, free = free_at(self.index, border, self.window)
            usable = free if end.allowed is None else free & end.allowed
            if not usable:
                raise NoCommonTag(
                    end.label, end.allowed or frozenset(), free, f"circuits.{end.circuit}",
                    "no tag is free at this border port among those offered",
                )  # fmt: skip
            pseudo = f"{PSEUDO_PREFIX}{i}"
            if border.translate:
                # Inside, any tag: the border device rewrites it to the border tag.
                pool = TagPool(1, 4094)
                rewrite[end.circuit] = (end, usable)
            else:
                pool = TagPool.only(usable)
            hosts[pseudo] = HostCap(pseudo, pseudo, end.device, end.port, 1, 1 << 30, bw, pool)
            nodes.append(
                NodeRequest.model_construct(
                    name=pseudo, kind=NodeKind.HOST, vcpu=1, ram_mb=1, image=None, pop=pseudo
                )
            )
            circuits.append(
                CircuitRequest.model_construct(
                    name=end.circuit, endpoints=[end.node, pseudo],
                    bandwidth_mbps=end.bandwidth_mbps,
                )
            )  # fmt: skip
        wider = dataclasses.replace(view, hosts=hosts)
        augmented = request.model_copy(update={"nodes": nodes, "circuits": circuits})
        try:
            emb = self.inner.embed(augmented, wider)
        except EmbeddingFailed as exc:
            raise _name_the_border(exc, self.ends, len(request.circuits)) from None
        for i in range(len(self.ends)):
            emb.placement.pop(f"{PSEUDO_PREFIX}{i}", None)
        seen: set[tuple[str, str, int]] = set()
        for end in self.ends:
            mapping = emb.circuits[end.circuit]
            hop = next(h for h in mapping.hops if (h.device, h.port) == (end.device, end.port))
            if end.circuit in rewrite:
                tag = min(rewrite[end.circuit][1] - {v for (_d, _p, v) in seen})
                mapping.hops = [
                    dataclasses.replace(h, vlan=tag) if h is hop else h for h in mapping.hops
                ]
            else:
                tag = hop.vlan
            key = (end.device, end.port, tag)
            if key in seen:
                raise EmbeddingFailed(
                    [FieldError(f"circuits.{end.circuit}",
                                f"two circuits of the slice would share tag {tag} at {end.label}")]
                )  # fmt: skip
            seen.add(key)
            self.chosen[end.circuit] = tag
        return emb


def _name_the_border(exc: EmbeddingFailed, ends: Sequence[BorderEnd], first: int) -> Exception:
    """The inner embedder names pseudo parts by their index: say which border circuit."""
    reasons = []
    for r in exc.reasons:
        text = r.message
        for i, end in enumerate(ends):
            text = text.replace(f"V-node {PSEUDO_PREFIX}{i}", f"border port {end.label}")
        field = r.field
        for i, end in enumerate(ends):
            if field == f"circuits[{first + i}]":
                field = f"circuits.{end.circuit}"
        reasons.append(FieldError(field, text))
    return EmbeddingFailed(reasons)


def ends_payload(ends: Sequence[BorderEnd], chosen: Mapping[str, int]) -> list[dict[str, Any]]:
    return [
        {"circuit": e.circuit, "node": e.node, "port": e.label, "vlan": chosen.get(e.circuit)}
        for e in ends
    ]
