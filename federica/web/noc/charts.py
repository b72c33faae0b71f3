"""Time-series charts for the NOC, drawn on the server as SVG geometry (no script, no CDN,
nothing for the Content-Security-Policy to allow). Pure: numbers in, coordinates and
labels out; the template writes the elements."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720.0, 220.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 12.0, 12.0, 28.0

Point = tuple[dt.datetime, float | None]


@dataclass(frozen=True)
class Line:
    name: str
    css: str  # a class in noc.css: the colour, and a dash so colour is never alone
    paths: list[str]  # one per run of known values: a gap stays a gap
    last: float | None


@dataclass
class Chart:
    title: str
    unit: str
    width: float = WIDTH
    height: float = HEIGHT
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True


def chart(
    title: str,
    unit: str,
    start: dt.datetime,
    end: dt.datetime,
    series: Mapping[str, Sequence[Point]],
    css: Mapping[str, str] | None = None,
) -> Chart:
    out = Chart(title, unit)
    values = [v for pts in series.values() for _, v in pts if v is not None]
    # All zeros (no traffic) still gets a scale, so its ticks do not pile up at 0.
    top = nice_ceiling(max(values, default=0.0)) or 1.0
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: dt.datetime) -> float:
        return LEFT + (at - start).total_seconds() / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - (v / top * plot_h if top else 0.0)

    for i, (name, pts) in enumerate(series.items()):
        paths: list[str] = []
        run: list[str] = []
        for at, v in pts:
            if v is None:
                if run:
                    paths.append(_path(run))
                run = []
                continue
            run.append(f"{x(at):.1f},{y(v):.1f}")
        if run:
            paths.append(_path(run))
        known = [v for _, v in pts if v is not None]
        out.lines.append(
            Line(name, (css or {}).get(name, f"series-{i}"), paths, known[-1] if known else None)
        )
    out.empty = not values
    out.y_ticks = [(y(top * k / 4), human(top * k / 4, unit)) for k in range(5)]
    out.x_ticks = [
        (x(start + (end - start) * k / 4), _clock(start + (end - start) * k / 4, span))
        for k in range(5)
    ]
    return out


def _path(points: list[str]) -> str:
    if len(points) == 1:  # a lone sample still shows, as a short tick
        px, py = points[0].split(",")
        return f"M{float(px) - 1.5:.1f},{py} L{float(px) + 1.5:.1f},{py}"
    return "M" + " L".join(points)


def nice_ceiling(v: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above v (0 stays 0)."""
    if v <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if v <= m * power:
            return float(m * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def human(v: float, unit: str) -> str:
    """1234567 b/s -> '1.23 Mb/s'; units without a prefix scale too."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def _clock(at: dt.datetime, span_s: float) -> str:
    return at.strftime("%H:%M" if span_s <= 2 * 86400 else "%d %b")
