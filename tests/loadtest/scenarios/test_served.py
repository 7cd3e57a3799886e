"""Where the service's CPU went, from made-up /proc readings."""

import os

from loadtest.scenarios.served import cpu_split, offline_cpu_ms


def test_cpu_split_counts_the_main_thread_apart_from_the_others():
    split = cpu_split(10, before={10: 1.0, 11: 5.0}, after={10: 3.0, 11: 15.0, 12: 4.0},
                      elapsed=10.0, answered=700)
    assert split == {"loop_cores": 0.2, "worker_cores": 1.4, "worker_cpu_ms_per_request": 20.0,
                     "loop_cpu_ms_per_request": 2000 / 700}
    assert cpu_split(10, {}, {10: 1.0}, 1.0, answered=0)["worker_cpu_ms_per_request"] is None
    assert offline_cpu_ms(len(os.sched_getaffinity(0)) * 10.0) == 100.0


def test_idle_cpu_seconds_grow_while_the_machine_sleeps():
    import time

    from loadtest.traffic import idle_cpu_seconds

    # a machine whose every core is busy (a build beside the tests) has no idle tick for a
    # while: wait for one, up to 5 s, and bound the growth by the time waited
    before, start = idle_cpu_seconds(), time.monotonic()
    while (grown := idle_cpu_seconds() - before) == 0 and time.monotonic() - start < 5:
        time.sleep(0.1)
    assert 0 < grown <= (time.monotonic() - start) * len(os.sched_getaffinity(0)) + 0.05
