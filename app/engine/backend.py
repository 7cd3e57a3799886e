"""The backend: tokenises and runs the pruned forward for one batch at a time, on a worker
thread, off the event loop."""

from __future__ import annotations

import time
from itertools import groupby

import torch

from app.engine.batch import Batch, BatchStats, SequenceResult, Text
from app.errors import PayloadTooLargeError
from ltp.core.artifact import Artifact
from ltp.core.model import ForwardOutput
from ltp.core.text import Encoded, encode


class Backend:
    """Holds the loaded artifacts of one device; ``run`` is called from the worker thread."""

    def __init__(self, artifacts: dict[str, Artifact]) -> None:
        self.artifacts = artifacts

    def forward(self, model: str, encoded: list[Encoded]) -> tuple[ForwardOutput, torch.Tensor]:
        """The compact forward of one padded batch; returns its output and fp32 logits."""
        with torch.inference_mode():
            out = self.artifacts[model].forward(encoded, mode="compact")
            return out, out.logits.float().cpu()

    def tokenize(self, batch: Batch, stats: BatchStats) -> None:
        """Tokenise the batch's ``Text`` entries in place, one call per way of truncating,
        each releasing the GIL. An input over the model's length that may not be cut leaves
        the batch, with its 413, in ``stats.refused``; the rest is counted in ``stats``."""
        max_length = self.artifacts[batch.model].meta.max_length
        tokenizer = self.artifacts[batch.model].tokenizer
        texts = [e for e in batch.entries if isinstance(e.encoded, Text)]
        way = lambda e: (e.encoded.truncate, e.encoded.direction)  # noqa: E731
        for (truncate, direction), group in groupby(sorted(texts, key=way), key=way):
            group = list(group)
            encoded = encode(tokenizer, [e.encoded.text for e in group],
                             [e.encoded.pair for e in group], max_length=max_length,
                             truncate=truncate, direction=direction, release_gil=True)
            for entry, enc in zip(group, encoded, strict=True):
                stats.texts += 1
                stats.text_chars += entry.encoded.chars
                stats.text_tokens += enc.num_tokens
                if enc.num_tokens > max_length:
                    stats.refused.append((entry, PayloadTooLargeError(
                        f"input {entry.encoded.index} has {enc.num_tokens} tokens, over the "
                        f"model's {max_length}; send truncate=true")))
                entry.encoded = enc
        refused = {id(entry) for entry, _ in stats.refused}
        batch.entries = [e for e in batch.entries if id(e) not in refused]

    def run(self, batch: Batch) -> BatchStats:
        """Tokenise what came as text, then the forward; ``stats.results`` follow
        ``batch.entries`` (without the refused, which are in ``stats.refused``)."""
        start = time.perf_counter()
        stats = BatchStats(model=batch.model, size=0, num_tokens=0, padded_tokens=0, seconds=0.0)
        self.tokenize(batch, stats)
        stats.tokenize_seconds = time.perf_counter() - start
        if not batch.entries:
            return stats
        start = time.perf_counter()
        out, logits = self.forward(batch.model, [e.encoded for e in batch.entries])
        probs = self.artifacts[batch.model].meta.head.scores(logits)  # softmax, sigmoid, values
        stats.seconds = time.perf_counter() - start
        stats.size, stats.num_tokens = len(batch.entries), batch.num_tokens
        stats.padded_tokens = batch.padded_tokens
        share = stats.tokenize_seconds / len(batch.entries)
        for i, entry in enumerate(batch.entries):
            stats.results.append(SequenceResult(
                probabilities=probs[i].tolist(),
                logits=logits[i].tolist(),
                input_tokens=int(out.input_tokens[i]),
                kept_tokens_per_layer=out.kept_tokens[i].tolist(),
                flops=float(out.flops[i]),
                flops_dense=float(out.flops_dense[i]),
                queue_seconds=max(0.0, batch.formed_at - entry.enqueued_at),
                inference_seconds=stats.seconds,
                batch_size=len(batch.entries),
                tokenize_seconds=share,
            ))
        return stats
