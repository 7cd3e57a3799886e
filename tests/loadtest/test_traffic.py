"""What the raw clients read from /proc."""

import os
import threading
import time

from loadtest.traffic import thread_cpu_seconds


def test_thread_cpu_seconds_sees_a_busy_thread():
    spun, release = threading.Event(), threading.Event()

    def spin():
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        spun.set()
        release.wait(10)  # alive while measured: an ended thread leaves /proc/PID/task

    worker = threading.Thread(target=spin)
    before = thread_cpu_seconds(os.getpid())
    worker.start()
    spun.wait(10)
    after = thread_cpu_seconds(os.getpid())
    release.set()
    worker.join()
    assert os.getpid() in after and worker.native_id in after
    assert after[worker.native_id] - before.get(worker.native_id, 0.0) >= 0.1


def test_the_probe_records_each_answer_from_its_own_process(server):
    import orjson

    from loadtest.reports import overload_report
    from loadtest.results import summarize
    from loadtest.traffic import Probe, Run

    body = orjson.dumps({"inputs": "a good film"})
    with Probe(server.url, body, duration_s=0.6, every_s=0.1) as probe:
        time.sleep(0.1)  # the load would run here
    statuses = [o.status for o in probe.outcomes]
    assert 4 <= len(statuses) <= 8 and set(statuses) == {200}, statuses
    assert all(0 < o.seconds < 5 for o in probe.outcomes)
    crowd = summarize(Run(outcomes=probe.outcomes), 0.6, 1)
    result = {"clients": 1, "texts_per_request": 1, "duration_s": 1, "model": "tiny-ltp",
              "serve_args": [], "rss_mib_max": 1.0, **crowd, "probe": crowd}
    report = overload_report(result)
    assert "A light probe beside them" in report and f"{{'200': {len(statuses)}}}" in report
    del result["probe"]  # a run recorded before the probe existed
    assert "probe" not in overload_report(result)
