"""Where things go on the substrate drawing: PoPs placed by their coordinates, links as
lines between PoPs, and what a slice (or a dry run) holds drawn over them. Pure: returns
coordinates and labels that the templates turn into SVG (no JavaScript needed)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

WIDTH, HEIGHT, MARGIN = 640.0, 420.0, 56.0


@dataclass(frozen=True)
class PopPoint:
    name: str
    x: float
    y: float
    label: str = ""  # e.g. the slice's nodes placed there
    used: bool = False


@dataclass(frozen=True)
class LinkLine:
    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    used: bool = False
    level: str = ""  # free-capacity class: ok | busy | full | down
    bend: float = 0.0  # parallel links between the same PoPs are bowed apart

    @property
    def path(self) -> str:
        mx, my = (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        length = math.hypot(dx, dy) or 1.0
        cx, cy = mx - dy / length * self.bend, my + dx / length * self.bend
        return f"M{self.x1:.1f},{self.y1:.1f} Q{cx:.1f},{cy:.1f} {self.x2:.1f},{self.y2:.1f}"

    @property
    def label_at(self) -> tuple[float, float]:
        mx, my = (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        length = math.hypot(dx, dy) or 1.0
        return mx - dy / length * self.bend / 2, my + dx / length * self.bend / 2


@dataclass
class Drawing:
    width: float = WIDTH
    height: float = HEIGHT
    pops: list[PopPoint] = field(default_factory=list)
    links: list[LinkLine] = field(default_factory=list)


@dataclass(frozen=True)
class LinkEnds:
    name: str
    a_pop: str
    b_pop: str


def project(coords: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """(lat, lon) → (x, y) in the drawing: equirectangular, scaled to fit, north up."""
    if not coords:
        return {}
    mean_lat = math.radians(sum(lat for lat, _ in coords.values()) / len(coords))
    flat = {n: (lon * math.cos(mean_lat), -lat) for n, (lat, lon) in coords.items()}
    xs, ys = [p[0] for p in flat.values()], [p[1] for p in flat.values()]
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    scale = min(
        (WIDTH - 2 * MARGIN) / span_x if span_x else math.inf,
        (HEIGHT - 2 * MARGIN) / span_y if span_y else math.inf,
    )
    if math.isinf(scale):
        scale = 1.0
    off_x = (WIDTH - span_x * scale) / 2
    off_y = (HEIGHT - span_y * scale) / 2
    return {
        n: (off_x + (x - min(xs)) * scale, off_y + (y - min(ys)) * scale)
        for n, (x, y) in flat.items()
    }


def draw(
    coords: Mapping[str, tuple[float, float]],
    links: Iterable[LinkEnds],
    *,
    pop_labels: Mapping[str, str] | None = None,
    link_labels: Mapping[str, str] | None = None,
    used_links: Iterable[str] = (),
    levels: Mapping[str, str] | None = None,
) -> Drawing:
    at = project(coords)
    pop_labels = pop_labels or {}
    link_labels = link_labels or {}
    used = set(used_links)
    out = Drawing()
    out.pops = [
        PopPoint(n, x, y, pop_labels.get(n, ""), n in pop_labels)
        for n, (x, y) in sorted(at.items())
    ]
    seen: dict[frozenset[str], int] = {}
    for lk in sorted(links, key=lambda k: k.name):
        if lk.a_pop == lk.b_pop or lk.a_pop not in at or lk.b_pop not in at:
            continue  # links inside a PoP are listed in the tables, not drawn
        pair = frozenset((lk.a_pop, lk.b_pop))
        n = seen[pair] = seen.get(pair, -1) + 1
        bend = 0.0 if n == 0 else 18.0 * ((n + 1) // 2) * (1 if n % 2 else -1)
        (x1, y1), (x2, y2) = at[lk.a_pop], at[lk.b_pop]
        out.links.append(
            LinkLine(
                lk.name,
                x1,
                y1,
                x2,
                y2,
                link_labels.get(lk.name, ""),
                lk.name in used,
                (levels or {}).get(lk.name, ""),
                bend,
            )
        )
    return out


def level(free: int, capacity: int) -> str:
    """A free-capacity class for colour and text (never colour alone: the label says it)."""
    if capacity <= 0 or free <= 0:
        return "full"
    return "busy" if free / capacity < 0.25 else "ok"
