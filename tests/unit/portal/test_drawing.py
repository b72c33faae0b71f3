"""The substrate drawing's geometry: PoPs fitted into the picture by their coordinates,
north up and west left; parallel links bowed apart; links inside a PoP left out."""

from __future__ import annotations

import pytest

from federica.web.portal.drawing import HEIGHT, MARGIN, WIDTH, LinkEnds, draw, level, project

CORE = {"PRG": (50.08, 14.43), "ERL": (49.6, 11.0), "MIL": (45.46, 9.19), "PSN": (43.72, 10.4)}


def test_pops_fit_inside_the_margins_with_north_up_and_west_left() -> None:
    at = project(CORE)
    for x, y in at.values():
        assert MARGIN - 0.01 <= x <= WIDTH - MARGIN + 0.01
        assert MARGIN - 0.01 <= y <= HEIGHT - MARGIN + 0.01
    assert at["PRG"][1] < at["MIL"][1]  # Prague is north of Milan: higher up
    assert at["MIL"][0] < at["PRG"][0]  # and west of Prague: further left


@pytest.mark.parametrize("coords", [{}, {"ONE": (45.0, 9.0)}, {"A": (45.0, 9.0), "B": (45.0, 9.0)}])
def test_degenerate_shapes_still_draw(coords: dict[str, tuple[float, float]]) -> None:
    at = project(coords)
    assert all(0 <= x <= WIDTH and 0 <= y <= HEIGHT for x, y in at.values())


def test_links_between_the_same_pops_are_bowed_apart_and_inner_ones_left_out() -> None:
    d = draw(
        CORE,
        [LinkEnds("l1", "PRG", "MIL"), LinkEnds("l2", "MIL", "PRG"),
         LinkEnds("inner", "PRG", "PRG"), LinkEnds("l3", "PRG", "MIL")],
        pop_labels={"PRG": "r1, r2"},
        link_labels={"l1": "c:100"},
        used_links=["l1"],
    )  # fmt: skip
    assert [lk.name for lk in d.links] == ["l1", "l2", "l3"]
    assert len({lk.bend for lk in d.links}) == 3  # three different curves
    assert [lk.used for lk in d.links] == [True, False, False]
    assert {p.name for p in d.pops if p.used} == {"PRG"}
    assert d.links[0].path.startswith("M") and " Q" in d.links[0].path


@pytest.mark.parametrize(
    ("free", "capacity", "expected"),
    [(1000, 1000, "ok"), (250, 1000, "ok"), (249, 1000, "busy"), (0, 1000, "full"), (5, 0, "full")],
)
def test_free_capacity_classes(free: int, capacity: int, expected: str) -> None:
    assert level(free, capacity) == expected
