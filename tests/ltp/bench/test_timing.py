"""The timing harness that the offline bench and the runtime comparison share."""

import time

from ltp.bench.timing import alternate, timed


def test_runs_take_turns_within_each_round_after_one_warm_up():
    calls = []
    runs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = alternate(runs, 3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then three rounds in turn
    assert list(times) == ["a", "b"] and all(len(t) == 3 for t in times.values())
    assert all(t >= 0 for ts in times.values() for t in ts)


def test_warm_up_calls_replace_the_runs_and_hooks_step_outside_the_timing():
    calls = []
    runs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    warmup = {"a": lambda: calls.append("warm a"), "b": lambda: calls.append("warm b")}
    times = alternate(runs, 2, warmup=warmup, after_run=lambda: calls.append("run"),
                      after_round=lambda: calls.append("round"))
    assert calls == ["warm a", "warm b", "round", "a", "run", "b", "run", "round",
                     "a", "run", "b", "run", "round"]
    assert [len(t) for t in times.values()] == [2, 2]


def test_timed_measures_the_call_and_syncs_around_it():
    synced = []
    seconds = timed(lambda: time.sleep(0.05), sync=lambda: synced.append(time.perf_counter()))
    assert 0.05 <= seconds < 1
    assert len(synced) == 2 and synced[1] - synced[0] >= 0.05
    slow = alternate({"fast": lambda: None, "slow": lambda: time.sleep(0.02)}, 2)
    assert min(slow["slow"]) > max(slow["fast"])
