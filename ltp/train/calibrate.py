"""Thresholds set from data rather than learned.

* ``calibrate_ramp``: the ramp's end value that keeps a target fraction of tokens.
* ``calibrate_schedule``: one threshold per layer so that a sample of inputs keeps a given
  fraction of tokens after each layer; ``schedule_for_flops`` picks the fractions for a
  target relative FLOPs. ``ltp prune --target-flops`` starts its stages from these.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from ltp.core.artifact import Artifact
from ltp.core.config import PruningConfig
from ltp.core.flops import dense_kept, encoder_flops
from ltp.core.text import Encoded

log = logging.getLogger(__name__)


def kept_per_layer(artifact: Artifact, inputs: list[Encoded]) -> torch.Tensor:
    """Tokens kept after each layer / input tokens, over all of ``inputs``, (L,) float64."""
    kept = torch.zeros(artifact.model.encoder.num_layers, dtype=torch.float64)
    total = 0
    with torch.inference_mode():
        for _, b in artifact.batches(inputs, 32):
            out = artifact.model.run(b, mode="compact")
            kept += out.kept_tokens.double().sum(0)
            total += int(out.input_tokens.sum())
    return kept / total


def kept_fraction(artifact: Artifact, inputs: list[Encoded]) -> float:
    """Mean over layers of (tokens kept after the layer / input tokens), on ``inputs``."""
    return float(kept_per_layer(artifact, inputs).mean())


def kept_schedule(artifact: Artifact, inputs: list[Encoded]) -> list[float]:
    """The kept fractions after each pruning layer, the shape ``calibrate_schedule`` takes."""
    return [min(1.0, float(k)) for k in kept_per_layer(artifact, inputs)[:-1]]


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
        artifact.model.set_pruning(replace(base, final_threshold=mid, delta=None))
        frac = kept_fraction(artifact, inputs)
        log.info("final_threshold=%.5f kept_fraction=%.3f", mid, frac)
        lo, hi = (mid, hi) if frac > target else (lo, mid)
    final = replace(base, final_threshold=(lo + hi) / 2, delta=None)
    artifact.model.set_pruning(final)
    return final


def calibrate_schedule(artifact: Artifact, inputs: list[Encoded], keep: list[float]) -> PruningConfig:
    """Set each layer's threshold so that, over ``inputs``, the tokens kept after layer l are
    ``keep[l]`` of the input tokens (token-weighted; the last layer is not pruned by
    thresholds, so it takes no entry).

    Layer by layer: with the thresholds of earlier layers fixed, the threshold of layer l is
    the score of the k-th best token at that layer over all inputs, k chosen so the count
    kept (classifier tokens included, which always stay) meets the target. Individual inputs
    keep more or fewer tokens than the target: that is the point of a threshold.
    """
    model = artifact.model
    pruning_layers = model.encoder.num_layers - 1
    if len(keep) != pruning_layers or not all(0.0 < k <= 1.0 for k in keep):
        raise ValueError(f"need {pruning_layers} keep fractions in (0, 1], got {keep}")
    base = model.pruning
    thresholds = [0.0] * model.encoder.num_layers
    batches = [b for _, b in artifact.batches(inputs, 32)]  # padded once, run once per layer
    total = sum(int(b.attention_mask.sum()) for b in batches)
    for layer in range(pruning_layers):
        model.set_pruning(replace(base, final_threshold=0.0, delta=list(thresholds)))
        candidates, always = [], 0
        with torch.inference_mode():
            for b in batches:
                out = model.run(b, mode="masked")
                scores, live = out.scores[layer]
                live = live.clone()
                always += int(live[:, 0].sum())
                live[:, 0] = False  # the classifier token stays whatever its score
                candidates.append(scores[live].float().cpu())
        pool = torch.cat(candidates).sort(descending=True).values
        wanted = round(keep[layer] * total) - always
        if len(pool) == 0:  # an earlier layer kept only the classifier tokens: nothing to rank
            thresholds[layer] = thresholds[layer - 1] if layer else 0.0
        elif keep[layer] >= 1.0 or wanted >= len(pool):
            thresholds[layer] = 0.0  # scores are >= 0: keep everything
        elif wanted <= 0:  # only the classifier tokens: just above the best score
            thresholds[layer] = float(torch.nextafter(pool[0], torch.tensor(float("inf"))))
        else:  # keep iff score >= threshold: the wanted-th best score
            thresholds[layer] = float(pool[wanted - 1])
        log.info("layer %d: threshold %.6f for keep %.3f", layer, thresholds[layer], keep[layer])
    final = replace(base, final_threshold=0.0, delta=thresholds)
    model.set_pruning(final)
    return final


def geometric_schedule(rate: float, pruning_layers: int, first: float = 1.0) -> list[float]:
    """Keep fractions after layers 0..pruning_layers-1: layer 0 keeps ``first`` (by default
    everything, as in the paper, where layer 0 never prunes), every later layer ``rate`` of
    what entered it."""
    if not 0.0 < first <= 1.0:
        raise ValueError(f"layer 0's keep fraction must be in (0, 1], got {first}")
    return [first * rate**layer for layer in range(pruning_layers)]


def schedule_for_flops(artifact: Artifact, lengths: list[int], target: float,
                       shape: list[float] | None = None, steps: int = 40,
                       first_keep: float = 1.0) -> list[float]:
    """A keep schedule of relative FLOPs ``target`` (paper formula, on inputs of ``lengths``
    tokens each keeping that fraction): ``shape`` raised to the power that meets the
    target, found by bisection. The default shape is geometric (layer 0 keeping
    ``first_keep``, each later layer the same fraction of what entered it), and stays
    geometric under powers; a learned schedule keeps its order between layers."""
    enc = artifact.model.encoder
    layers = enc.num_layers
    shape = geometric_schedule(0.5, layers - 1, first_keep) if shape is None else list(shape)
    if len(shape) != layers - 1:
        raise ValueError(f"need {layers - 1} keep fractions, got {len(shape)}")
    base = torch.tensor(shape, dtype=torch.float64).clamp(1e-6, 1.0)
    base[1:] = base[1:].clamp_max(0.999)  # every layer after the first can prune
    n_in = torch.tensor(lengths, dtype=torch.float64)
    dense = encoder_flops(enc.hidden_size, enc.intermediate_size, n_in, dense_kept(n_in, layers))

    def relative(power: float) -> float:
        keep = torch.cat([base**power, torch.zeros(1, dtype=torch.float64)])
        kept = (n_in[:, None] * keep).clamp_min(1.0)  # the classifier token always stays
        flops = encoder_flops(enc.hidden_size, enc.intermediate_size, n_in, kept)
        return float(flops.sum() / dense.sum())

    lo, hi = 1e-3, 1e3  # in log space: relative() falls as the power grows
    if not relative(hi) < target < relative(lo) or not target < 1.0:
        raise ValueError(f"target relative FLOPs must be in ({relative(hi):.3f}, "
                         f"{min(1.0, relative(lo)):.3f}), got {target}")
    for _ in range(steps):
        mid = (lo * hi) ** 0.5
        lo, hi = (lo, mid) if relative(mid) < target else (mid, hi)
    power = (lo * hi) ** 0.5
    return [float(k) for k in base**power]
