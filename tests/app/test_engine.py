"""Engine behaviour beyond the queue: abandoned sequences are not computed; several workers
run batches side by side; idle workers run below the event loop."""

import asyncio
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.engine.backend import Backend
from app.engine.batch import Batch, Entry, Text
from app.engine.engine import Engine
from app.engine.queue import QueueLimits
from app.loading import worker_plan
from app.main import create_app
from app.settings import Settings
from ltp.core.artifact import load_artifact
from ltp.core.text import encode
from tests.app.conftest import settings_for


def limits(**overrides) -> QueueLimits:
    return QueueLimits.from_settings(Settings(**overrides))


class RecordingBackend(Backend):
    """The real backend, noting which sequences it computed."""

    def __init__(self, artifacts):
        super().__init__(artifacts)
        self.computed = []

    def run(self, batch):
        self.computed += [e.encoded.input_ids for e in batch.entries]
        return super().run(batch)


def test_abandoned_sequences_are_not_computed(models_dir):
    artifact = load_artifact(models_dir / "tiny-ltp")
    backend = RecordingBackend({"tiny-ltp": artifact})

    async def scenario():
        loop = asyncio.get_running_loop()
        engine = Engine(backend, limits(max_wait_ms=50))
        engine.start()
        texts = ["good", "bad film", "the plot"]
        encoded = encode(artifact.tokenizer, texts, max_length=32)
        entries = [Entry("tiny-ltp", e, time.monotonic(), float("inf"), loop.create_future(), loop)
                   for e in encoded]
        entries[0].future.cancel()  # client gone before its batch formed
        entries[2].future.cancel()
        engine.submit(entries)
        result = await entries[1].future
        await engine.stop()
        return result

    result = asyncio.run(scenario())
    assert result.input_tokens == 4
    assert len(backend.computed) == 1, "only the live sequence reached the model"


class OverlapBackend(Backend):
    """The real backend, recording how many batches run at the same time."""

    def __init__(self, artifacts):
        super().__init__(artifacts)
        self.running, self.most, self.threads = 0, 0, set()
        self.lock = threading.Lock()

    def run(self, batch):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(0.05)  # long enough for the other worker to take the next batch
            return super().run(batch)
        finally:
            with self.lock:
                self.running -= 1


def _run_with_workers(models_dir, workers: int, backend_class=None, **engine_options):
    artifact = load_artifact(models_dir / "tiny-ltp")
    backend = (backend_class or OverlapBackend)({"tiny-ltp": artifact})
    texts = [f"review number {i} " + "word " * (i % 7) for i in range(24)]
    encoded = encode(artifact.tokenizer, texts, max_length=32)

    async def scenario():
        loop = asyncio.get_running_loop()
        engine = Engine(backend, limits(max_batch_size=4), workers=workers, **engine_options)
        engine.start()
        entries = [Entry("tiny-ltp", e, time.monotonic(), float("inf"), loop.create_future(), loop)
                   for e in encoded]
        engine.submit(entries)
        results = await asyncio.gather(*(e.future for e in entries))
        await engine.stop()
        return results

    return backend, asyncio.run(scenario()), artifact, encoded


def test_two_workers_run_batches_side_by_side(models_dir):
    backend, results, artifact, encoded = _run_with_workers(models_dir, workers=2)
    assert backend.most == 2 and len(backend.threads) == 2
    for enc, res in zip(encoded, results, strict=True):  # each result is its own input's
        alone = Backend({"tiny-ltp": artifact}).forward("tiny-ltp", [enc])[1][0].softmax(-1).tolist()
        assert res.input_tokens == enc.num_tokens
        assert res.probabilities == pytest.approx(alone, abs=1e-5)


def test_one_worker_runs_one_batch_at_a_time(models_dir):
    backend, results, _, encoded = _run_with_workers(models_dir, workers=1)
    assert backend.most == 1 and len(results) == len(encoded)


def test_worker_plan():
    assert worker_plan(0, 0, "cpu", 2) == (2, 1)
    assert worker_plan(0, 0, "cpu", 16) == (2, 8)
    assert worker_plan(0, 0, "cpu", 1) == (1, 1)
    assert worker_plan(0, 0, "cuda", 16) == (1, 16)
    assert worker_plan(3, 0, "cpu", 12) == (3, 4)
    assert worker_plan(1, 2, "cpu", 2) == (1, 2)
    with pytest.raises(ValueError):
        Engine(Backend({}), limits(), workers=0)


class PolicyBackend(Backend):
    """The real backend, noting the scheduling policy of the thread that runs a batch and of
    a thread it starts."""

    def __init__(self, artifacts):
        super().__init__(artifacts)
        self.policies = []

    def run(self, batch):
        started = []
        helper = threading.Thread(target=lambda: started.append(os.sched_getscheduler(0)))
        helper.start()
        helper.join()
        self.policies.append((os.sched_getscheduler(0), started[0]))
        return super().run(batch)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE")
@pytest.mark.parametrize("idle", [True, False])
def test_idle_workers_and_the_threads_they_start_run_under_sched_idle(models_dir, idle):
    own = os.sched_getscheduler(0)  # the event loop's thread: the test's own
    assert own != os.SCHED_IDLE
    backend, results, _, encoded = _run_with_workers(models_dir, 2, PolicyBackend,
                                                     idle_workers=idle)
    assert len(results) == len(encoded) and backend.policies
    expected = os.SCHED_IDLE if idle else own
    assert set(backend.policies) == {(expected, expected)}
    assert os.sched_getscheduler(0) == own  # the event loop's thread is untouched


def test_the_service_runs_idle_workers_unless_told_otherwise(models_dir):
    for overrides, idle in (({}, True), ({"worker_scheduling": "normal"}, False)):
        with TestClient(create_app(settings_for(models_dir, **overrides))) as client:
            assert client.app.state.front.engine.idle_workers is idle
    with pytest.raises(ValidationError, match="worker_scheduling must be one of idle, normal"):
        Settings(worker_scheduling="low")


def test_auto_batch_size_follows_the_engines(models_dir):
    from app.engine.queue import QueueLimits
    from app.loading import batch_size
    from app.settings import LARGE_BATCH, SMALL_BATCH

    # int8 runs one input a call (fp32 packs several: ltp.core.engines.ort.GROUP)
    ort_model = load_artifact(models_dir / "tiny-ltp", engine="ort", dtype="int8")
    eager = load_artifact(models_dir / "tiny-ltp")
    assert batch_size({"a": ort_model}) == SMALL_BATCH  # one input a call: batching buys nothing
    assert batch_size({"a": load_artifact(models_dir / "tiny-ltp", engine="ort")}) == LARGE_BATCH
    assert batch_size({"a": ort_model, "b": eager}) == LARGE_BATCH
    ort_model.model.set_engine("ort", group=3)
    assert batch_size({"a": ort_model}) == LARGE_BATCH, "groups of inputs gain from batches"
    assert QueueLimits.from_settings(Settings(), SMALL_BATCH).max_batch_size == SMALL_BATCH
    assert QueueLimits.from_settings(Settings(max_batch_size=5), SMALL_BATCH).max_batch_size == 5


def _texts(texts, *, truncate=True, direction="right", pairs=None, loop=None):
    """Entries of ``texts`` still to tokenise; with ``loop``, each with a future to await."""
    pairs = pairs or [None] * len(texts)
    return [Entry("tiny-ltp", Text(t, p, truncate, direction, 8, i), time.monotonic(),
                  float("inf"), loop and loop.create_future(), loop)
            for i, (t, p) in enumerate(zip(texts, pairs, strict=True))]


def test_the_worker_tokenises_as_the_event_loop_did(models_dir):
    artifact = load_artifact(models_dir / "tiny-ltp")
    backend, max_length = Backend({"tiny-ltp": artifact}), artifact.meta.max_length
    long = "good " + "the " * (3 * max_length) + "plot"  # the sides cut differ at their ends
    texts = ["good film", long, "a pair's first", long]
    pairs = [None, None, "and its second", None]
    batch = Batch("tiny-ltp", _texts(texts[:2], pairs=pairs[:2]) + _texts(texts[2:], pairs=pairs[2:],
                  direction="left"), formed_at=0.0)
    stats = backend.run(batch)
    right = encode(artifact.tokenizer, texts[:2], pairs[:2], max_length=max_length)
    left = encode(artifact.tokenizer, texts[2:], pairs[2:], max_length=max_length, direction="left")
    assert [e.encoded for e in batch.entries] == right + left  # each cut from its own side
    assert right[1].input_ids != left[1].input_ids and len(left[1].input_ids) == max_length
    assert [r.input_tokens for r in stats.results] == [e.num_tokens for e in right + left]
    assert stats.texts == 4 and stats.text_tokens == sum(e.num_tokens for e in right + left)
    assert stats.text_chars == sum(len(t) + len(p or "") for t, p in zip(texts, pairs, strict=True))
    assert stats.tokenize_seconds > 0 and not stats.refused


def test_an_input_too_long_to_cut_is_refused_alone(models_dir):
    artifact = load_artifact(models_dir / "tiny-ltp")
    long = "word " * (3 * artifact.meta.max_length)
    batch = Batch("tiny-ltp", _texts(["good film", long, "great"], truncate=False), formed_at=0.0)
    stats = Backend({"tiny-ltp": artifact}).run(batch)
    (entry, error), = stats.refused
    assert entry.encoded.input_ids[:2] == encode(artifact.tokenizer, [long], truncate=False,
                                                 max_length=0)[0].input_ids[:2]
    assert error.status == 413 and "input 1 has" in str(error) and "truncate=true" in str(error)
    assert len(stats.results) == stats.size == 2 == len(batch.entries)  # the others ran
    assert [r.input_tokens for r in stats.results] == [4, 3]


def test_a_batch_with_every_input_refused_runs_no_forward(models_dir):
    artifact = load_artifact(models_dir / "tiny-ltp")
    long = "word " * (3 * artifact.meta.max_length)
    stats = Backend({"tiny-ltp": artifact}).run(
        Batch("tiny-ltp", _texts([long], truncate=False), formed_at=0.0))
    assert len(stats.refused) == 1 and stats.results == [] and stats.seconds == 0.0


def test_requests_are_tokenised_on_the_workers_not_the_event_loop(models_dir, monkeypatch):
    from fastapi.testclient import TestClient

    import app.engine.backend as backend_module
    from app.main import create_app
    from tests.app.conftest import settings_for

    threads = []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return encode(*args, **kwargs)

    monkeypatch.setattr(backend_module, "encode", recording)
    with TestClient(create_app(settings_for(models_dir))) as client:
        threads.clear()  # warm-up tokenises on the main thread before the service is ready
        for inputs in ("good film", ["a", "b c", "d e f"]):
            assert client.post("/classify", json={"inputs": inputs}).status_code == 200
    assert threads and all(name.startswith("ltp-worker-") for name in threads)


class FailingOnceBackend(Backend):
    """The real backend, whose first batch fails."""

    def __init__(self, artifacts):
        super().__init__(artifacts)
        self.calls = 0

    def run(self, batch):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a fault in the forward")
        return super().run(batch)


def test_a_failed_batch_fails_its_requests_and_frees_its_worker(models_dir):
    from app.errors import InferenceFailedError

    artifact = load_artifact(models_dir / "tiny-ltp")
    backend = FailingOnceBackend({"tiny-ltp": artifact})

    async def scenario():
        loop = asyncio.get_running_loop()
        engine = Engine(backend, limits(), workers=1)
        engine.start()
        first = _texts(["good film"], loop=loop)
        engine.submit(first)
        with pytest.raises(InferenceFailedError):
            await first[0].future
        then = _texts(["great"], loop=loop)
        engine.submit(then)  # the one worker must be free again
        result = await asyncio.wait_for(then[0].future, timeout=10)
        await engine.stop()
        return result

    assert asyncio.run(scenario()).input_tokens == 3
