"""is_available's steps: a sampling missed is a gap (0); a round a little late is not."""

from federica.gmoc.nodestats import gaps

S = 1_000_000
STEP = 5 * S  # the poll interval as the step: one point per sampling


def test_samplings_on_time_are_all_available() -> None:
    assert gaps([0, 5 * S, 10 * S], STEP, STEP) == [(0, 1), (5 * S, 1), (10 * S, 1)]


def test_a_round_early_then_one_late_leaves_no_false_gap() -> None:
    # 4.9 s then 10.1 s: one interval apart, but two steps apart on the grid. Before the
    # fix the empty step 5 s was a 0 (seen in CI on a busy machine).
    assert gaps([0, 49 * S // 10, 101 * S // 10], STEP, STEP) == [
        (0, 1),
        (5 * S, 1),
        (10 * S, 1),
    ]


def test_a_missed_sampling_is_a_gap_at_its_first_step() -> None:
    assert gaps([0, 5 * S, 20 * S], STEP, STEP) == [
        (0, 1),
        (5 * S, 1),
        (10 * S, 0),
        (20 * S, 1),
    ]


def test_longer_steps_are_available_where_any_sampling_answered() -> None:
    hour = 3600 * S
    samplings = [0, 30 * S, hour + 60 * S, 3 * hour]  # none in the third hour
    assert gaps(samplings, hour, 30 * S) == [(0, 1), (hour, 1), (2 * hour, 0), (3 * hour, 1)]


def test_nothing_is_known_before_the_first_or_after_the_last() -> None:
    assert gaps([], STEP, STEP) == []
    assert gaps([7 * S], STEP, STEP) == [(5 * S, 1)]
