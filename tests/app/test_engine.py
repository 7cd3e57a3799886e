"""Engine behaviour beyond the queue: abandoned sequences are not computed; several workers
run batches side by side."""

import asyncio
import threading
import time

import pytest

from app.engine.backend import Backend
from app.engine.batch import Entry
from app.engine.engine import Engine
from app.engine.queue import QueueLimits
from app.loading import worker_plan
from app.settings import Settings
from ltp.core.artifact import load_artifact
from ltp.core.text import encode


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


def _run_with_workers(models_dir, workers: int):
    artifact = load_artifact(models_dir / "tiny-ltp")
    backend = OverlapBackend({"tiny-ltp": artifact})
    texts = [f"review number {i} " + "word " * (i % 7) for i in range(24)]
    encoded = encode(artifact.tokenizer, texts, max_length=32)

    async def scenario():
        loop = asyncio.get_running_loop()
        engine = Engine(backend, limits(max_batch_size=4), workers=workers)
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
