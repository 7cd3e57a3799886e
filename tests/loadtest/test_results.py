"""One figure over a cell's repeated runs."""

from loadtest.results import Spread


def test_three_or_more_runs_give_mean_and_standard_deviation():
    assert Spread((1.0, 2.0, 3.0)).text(".1f") == "2.0 ± 1.0"
    assert Spread((1.0, 2.0, 3.0)).range_text(".1f") == "2.0 (1.0–3.0)"
    assert Spread((4.0,)).text(".1f") == "4.0"
