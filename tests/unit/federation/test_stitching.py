"""The border tags' notation: what a peer offers and answers, and what a refusal names."""

from __future__ import annotations

import pytest

from federica.errors import InvalidInput
from federica.federation.stitching import NoCommonTag, format_tags, parse_tags, tags_of
from federica.slices.embed import TagPool


def test_tags_round_trip_as_ranges() -> None:
    tags = parse_tags("3000-3002,3005,3007-3008", "vlans")
    assert sorted(tags) == [3000, 3001, 3002, 3005, 3007, 3008]
    assert format_tags(tags) == "3000-3002,3005,3007-3008"
    assert format_tags([]) == ""
    assert format_tags(tags_of(TagPool(3000, 3005, frozenset({3002})))) == "3000-3001,3003-3005"


@pytest.mark.parametrize("bad", ["", "x", "3000-", "0-5", "5-4", "4095", "1,,2", 3000, None])
def test_malformed_tags_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_tags(bad, "borders[0].vlans")
    assert info.value.errors[0].field == "borders[0].vlans"


def test_no_common_tag_names_the_hop_and_both_sides_tags() -> None:
    err = NoCommonTag("tyo-sw:xe-2/0/0", frozenset(range(3000, 3100)),
                      frozenset(range(3100, 3200)), "circuits.x", "no tag in common")  # fmt: skip
    problem = err.problem()
    assert problem["status"] == 409
    assert problem["type"].endswith("/no-common-vlan")
    assert (problem["hop"], problem["offered"], problem["free"]) == (
        "tyo-sw:xe-2/0/0", "3000-3099", "3100-3199"
    )  # fmt: skip
    assert problem["errors"] == [{"field": "circuits.x", "message": "no tag in common"}]
