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
