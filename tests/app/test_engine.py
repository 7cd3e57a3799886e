"""Engine behaviour beyond the queue: abandoned sequences are not computed."""

import asyncio
import time

from app.engine.backend import Backend
from app.engine.batch import Entry
from app.engine.engine import Engine
from app.engine.queue import QueueLimits
from ltp.artifact import load_artifact
from ltp.text import encode


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
        engine = Engine(backend, QueueLimits(), max_wait_s=0.05)
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
