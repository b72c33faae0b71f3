"""VLAN tags a request RSpec asks for (shared-vlan `vlantag`), and what an embedding
failure means in GENI codes.

The embedder picks paths and tags itself; `RequestedTags` wraps it: after the embedding,
a circuit that asked for a tag gets it on every hop if that tag is free there over the
window, else the request fails with VLAN_UNAVAILABLE naming the hop. (The path is the
embedder's choice; a path on which the tag would be free but that the embedder did not
pick is not searched.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from federica.errors import FieldError
from federica.geni.codes import Code
from federica.slices.coordinated import Coordinated
from federica.slices.embed import (
    CircuitMapping,
    Embedder,
    Embedding,
    EmbeddingFailed,
    SubstrateView,
)
from federica.slices.request import SliceRequest


class VlanUnavailable(EmbeddingFailed):
    pass


@dataclass
class RequestedTags:
    wanted: Mapping[str, int]  # circuit -> tag
    inner: Embedder | None = None

    def embed(self, request: SliceRequest, view: SubstrateView) -> Embedding:
        emb = (self.inner or Coordinated()).embed(request, view)
        if not self.wanted:
            return emb
        links = {lk.name: lk for lk in view.links}
        uplinks = {(h.device, h.port): h for h in view.hosts.values()}
        used: set[tuple[str, str, int]] = set()
        circuits: dict[str, CircuitMapping] = {}
        for i, c in enumerate(request.circuits):
            mapping = emb.circuits[c.name]
            tag = self.wanted.get(c.name)
            if tag is None:
                circuits[c.name] = mapping
                continue
            hops = []
            for h in mapping.hops:
                free = (
                    tag in links[h.link].vlans_free
                    if h.link is not None
                    else (h.device, h.port) in uplinks
                    and tag in uplinks[(h.device, h.port)].uplink_vlans_free
                )
                if not free or (h.device, h.port, tag) in used:
                    where = f"link {h.link}" if h.link else f"port {h.device}:{h.port}"
                    raise VlanUnavailable(
                        [
                            FieldError(
                                f"circuits[{i}]",
                                f"circuit {c.name}: VLAN {tag} is taken on {where}",
                            )
                        ]
                    )
                hops.append(replace(h, vlan=tag))
            for h in hops:
                used.add((h.device, h.port, tag))
            circuits[c.name] = CircuitMapping(mapping.name, mapping.bandwidth_mbps, hops)
        # The embedder's own tags of the other circuits must not collide with these.
        for name, m in circuits.items():
            if name in self.wanted:
                continue
            for h in m.hops:
                if (h.device, h.port, h.vlan) in used:
                    raise VlanUnavailable(
                        [
                            FieldError(
                                "circuits",
                                f"circuit {name} was given VLAN {h.vlan}, also asked for",
                            )
                        ]
                    )
        return Embedding(placement=emb.placement, circuits=circuits)


def classify(exc: EmbeddingFailed) -> Code:
    """VLAN_UNAVAILABLE, INSUFFICIENT_BANDWIDTH (a circuit does not fit) or UNAVAILABLE
    (a node has no room)."""
    text = " ".join(r.message for r in exc.reasons)
    if isinstance(exc, VlanUnavailable) or "VLAN" in text:
        return Code.VLAN_UNAVAILABLE
    if any(r.field.startswith("circuits") for r in exc.reasons) or "Mb/s" in text:
        return Code.INSUFFICIENT_BANDWIDTH
    return Code.UNAVAILABLE
