"""Hand-set thresholds: pick the ramp's end value that keeps a target fraction of tokens."""

from __future__ import annotations

import logging

import torch

from ltp.artifact import Artifact
from ltp.config import PruningConfig
from ltp.text import Encoded, length_sorted_batches, pad_batch

log = logging.getLogger(__name__)


def kept_fraction(artifact: Artifact, inputs: list[Encoded], batch_size: int = 32) -> float:
    """Mean over layers of (tokens kept after the layer / input tokens), on ``inputs``."""
    model, pad_id = artifact.model, artifact.tokenizer.pad_token_id
    kept = torch.zeros(model.encoder.num_layers, dtype=torch.float64)
    total = 0
    with torch.inference_mode():
        for g in length_sorted_batches(inputs, batch_size):
            b = pad_batch([inputs[i] for i in g], pad_id).to(artifact.device)
            out = model(b.input_ids, b.attention_mask, b.token_type_ids, mode="compact")
            kept += out.kept_tokens.double().sum(0)
            total += int(out.input_tokens.sum())
    return float((kept / total).mean())


def calibrate_ramp(
    artifact: Artifact, inputs: list[Encoded], target: float, steps: int = 14
) -> PruningConfig:
    """Bisect the ramp's final threshold (deltas zero) until the kept fraction is ``target``.

    The kept fraction falls monotonically as the ramp rises, so bisection converges.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target kept fraction must be in (0, 1), got {target}")
    base = artifact.model.pruning
    lo, hi = 0.0, 20.0 / base.normalizer
    for _ in range(steps):
        mid = (lo + hi) / 2
        artifact.model.set_pruning(
            PruningConfig(base.num_layers, base.normalizer, mid, base.temperature)
        )
        frac = kept_fraction(artifact, inputs)
        log.info("final_threshold=%.5f kept_fraction=%.3f", mid, frac)
        lo, hi = (mid, hi) if frac > target else (lo, mid)
    final = PruningConfig(base.num_layers, base.normalizer, (lo + hi) / 2, base.temperature)
    artifact.model.set_pruning(final)
    return final
