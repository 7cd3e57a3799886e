"""The backend: runs the pruned forward for one batch at a time, off the event loop."""

from __future__ import annotations

import time

import torch

from app.engine.batch import Batch, BatchStats, SequenceResult
from ltp.artifact import Artifact
from ltp.text import pad_batch


class Backend:
    """Holds the loaded artifacts of one device; ``run`` is called from the worker thread."""

    def __init__(self, artifacts: dict[str, Artifact]) -> None:
        self.artifacts = artifacts

    def run(self, batch: Batch) -> BatchStats:
        artifact = self.artifacts[batch.model]
        start = time.perf_counter()
        inputs = pad_batch([e.encoded for e in batch.entries], artifact.tokenizer.pad_token_id)
        inputs = inputs.to(artifact.device)
        with torch.inference_mode():
            out = artifact.model(inputs.input_ids, inputs.attention_mask, inputs.token_type_ids,
                                 mode="compact")
            probs = out.logits.float().softmax(-1).cpu()
        seconds = time.perf_counter() - start
        stats = BatchStats(model=batch.model, size=len(batch.entries), num_tokens=batch.num_tokens,
                           padded_tokens=batch.padded_tokens, seconds=seconds)
        for i, entry in enumerate(batch.entries):
            stats.results.append(SequenceResult(
                probabilities=probs[i].tolist(),
                input_tokens=int(out.input_tokens[i]),
                kept_tokens_per_layer=out.kept_tokens[i].tolist(),
                flops=float(out.flops[i]),
                flops_dense=float(out.flops_dense[i]),
                queue_seconds=max(0.0, batch.formed_at - entry.enqueued_at),
                inference_seconds=seconds,
                batch_size=len(batch.entries),
            ))
        return stats
