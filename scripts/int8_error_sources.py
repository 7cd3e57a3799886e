"""Where the int8 forward's disagreement with fp32 comes from: the int8 kernel against
simulated quantisation of the weights alone, of the activations alone, and with SmoothQuant's
per-channel scaling, each compared with the fp32 compact forward on the same inputs.

    python scripts/int8_error_sources.py models/reviews-minilm-ltp --dataset amazon-food
    python scripts/int8_error_sources.py models/reviews-minilm-ltp-qat --dataset amazon-food --ort
    python scripts/int8_error_sources.py models/reviews-minilm-ltp --dataset amazon-food --scores

``--scores``: how far the ort engine's int8 rounding (simulated, one input at a time) moves
each token's importance score, beside how close the fp32 scores sit to their layer's
threshold: per pruning layer, quantiles of |log(int8 score / fp32 score)| and the share of
tokens within 2, 5, 10 and 20% of the threshold (every token live, the dense ranking).

Simulated quantisation rounds in fp32 (quantise, then dequantise) and runs the fp32 kernels,
so it isolates one error source at a time: weights per output channel, symmetric, at 7 bits
(+-63, what the int8 kernel stores, ``ltp.core.quant.WEIGHT_LEVELS``) or 8 bits (+-127);
activations per token over [-amax, amax] in 256 steps, as the int8 kernel quantises them.
The ort engine's int8 (``--ort``): its kernel, and its rounding of activations simulated
(uint8 over each input's whole tensor), one input at a time.
SmoothQuant (Xiao et al., 2023) divides each input channel of a linear by
``s = max|x|^alpha / max|w|^(1 - alpha)`` and multiplies the weight's column by it, moving
activation outliers into the weights; the channel maxima come from training texts.
"""

from __future__ import annotations

import argparse
import json

import torch

from ltp.bench.offline import BenchConfig, agreement
from ltp.core.artifact import load_artifact
from ltp.core.machine import tune_allocator
from ltp.core.quant import PARTS, WEIGHT_LEVELS, quantize_model, quantize_weight
from ltp.data.encoding import encode_split

QKV = ("query", "key", "value")


def fake_weight(w: torch.Tensor, levels: int) -> torch.Tensor:
    """The int8 kernel's weight rounding (``quantize_weight``), dequantised to fp32."""
    q, scale = quantize_weight(w, levels)
    return q.float() * scale[:, None]


def fake_tokens(x: torch.Tensor) -> torch.Tensor:
    """Per-token 8-bit: every row over its own [-amax, amax] in 255 steps."""
    amax = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
    step = 2 / 255
    return (torch.round((x / amax + 1) / step) * step - 1) * amax


def channel_maxima(artifact, encoded) -> dict[tuple[int, str], torch.Tensor]:
    """Largest |x| per input channel of every linear (Q/K/V share theirs), compact forward."""
    stats: dict[tuple[int, str], torch.Tensor] = {}

    def record(key, x):
        m = x.reshape(-1, x.shape[-1]).abs().amax(dim=0)
        stats[key] = torch.maximum(stats[key], m) if key in stats else m

    model = artifact.model
    hooks = [getattr(parts, p).register_forward_hook(
                 lambda mod, inp, out, key=(i, p): record(key, inp[0]))
             for i, parts in enumerate(model.encoder.layers) for p in PARTS if p not in QKV]
    project = model.project
    model.project = lambda i, x, which: (record((i, "qkv"), x), project(i, x, which))[1]
    with torch.inference_mode():
        for _, b in artifact.batches(encoded, 32):
            model.run(b, mode="compact")
    for h in hooks:
        h.remove()
    del model.project
    return stats


def fake_tensor(x: torch.Tensor) -> torch.Tensor:
    """ONNX Runtime's dynamic quantisation of a MatMul's input: uint8 over the whole tensor's
    [min, max] (0 included), with a zero point. Run one input at a time, the tensor is the
    input's tokens, as in the ort engine's whole-forward graph."""
    lo, hi = x.min().clamp(max=0.0), x.max().clamp(min=0.0)
    scale = ((hi - lo) / 255).clamp_min(1e-8)
    zero = torch.round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def simulate(artifact, weight_levels: int | None, tokens: bool,
             smooth: dict[tuple[int, str], torch.Tensor] | None = None,
             rounding=fake_tokens, fp32_parts: tuple[str, ...] = ()) -> None:
    """Quantise and dequantise the encoder linears' weights and/or inputs in place."""
    model = artifact.model
    scales: dict[tuple[int, str], torch.Tensor] = {}
    with torch.no_grad():
        for i, parts in enumerate(model.encoder.layers):
            for p in PARTS:
                lin = getattr(parts, p)
                key = (i, "qkv" if p in QKV else p)
                s = smooth.get(key) if smooth else None
                w = lin.weight * s if s is not None else lin.weight
                if weight_levels:
                    w = fake_weight(w, weight_levels)
                lin.weight.copy_(w / s if s is not None else w)
                if s is not None:
                    scales[key] = s
    if not tokens:
        return

    def quantised(key, x):
        s = scales.get(key)
        return rounding(x / s) * s if s is not None else rounding(x)

    for i, parts in enumerate(model.encoder.layers):
        for p in PARTS:
            if p not in QKV and p not in fp32_parts:
                getattr(parts, p).register_forward_pre_hook(
                    lambda mod, inp, key=(i, p): (quantised(key, inp[0]),))
    project = model.project
    model.project = lambda i, x, which: project(i, quantised((i, "qkv"), x), which)


def smoothing(artifact, maxima, alpha: float) -> dict[tuple[int, str], torch.Tensor]:
    out = {}
    for i, parts in enumerate(artifact.model.encoder.layers):
        for key, weights in (((i, "qkv"), [getattr(parts, p).weight for p in QKV]),
                             *(((i, p), [getattr(parts, p).weight]) for p in PARTS if p not in QKV)):
            wmax = torch.cat(weights).abs().amax(dim=0).clamp_min(1e-5)
            out[key] = (maxima[key].clamp_min(1e-5) ** alpha / wmax ** (1 - alpha)).clamp_min(1e-5)
    return out


def score_noise(reference, simulated, encoded) -> list[dict]:
    """Per pruning layer: the int8 scores' relative error and the fp32 scores' distance to
    the threshold, both as |log ratio|, over every live token of ``encoded``."""
    thresholds = reference.model.thresholds().detach()
    errors: dict[int, list[torch.Tensor]] = {}
    distances: dict[int, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for e in encoded:
            batch = reference.pad([e])
            live = batch.attention_mask.bool()
            pairs = zip(reference.model.dense_scores(batch), simulated.model.dense_scores(batch),
                        strict=True)
            for layer, (fp32, int8) in enumerate(pairs):
                if thresholds[layer] <= 0:  # the layer prunes nothing
                    continue
                fp32, int8 = fp32[live].clamp_min(1e-9), int8[live].clamp_min(1e-9)
                errors.setdefault(layer, []).append(torch.log(int8 / fp32).abs())
                distances.setdefault(layer, []).append(torch.log(fp32 / thresholds[layer]).abs())
    out = []
    for layer in errors:
        err, dist = torch.cat(errors[layer]), torch.cat(distances[layer])
        q = torch.quantile(err, torch.tensor([0.5, 0.9, 0.99]))
        out.append({"layer": layer, "tokens": len(err),
                    "int8_score_error": {"p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2])},
                    "share_within_of_threshold": {f"{b:.0%}": float((dist < b).float().mean())
                                                  for b in (0.02, 0.05, 0.1, 0.2)}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--examples", type=int, default=512, help="test inputs compared")
    parser.add_argument("--calibration", type=int, default=256,
                        help="training texts for SmoothQuant's channel maxima")
    parser.add_argument("--ort", action="store_true",
                        help="only the ort engine's int8: its kernel and its activations' rounding "
                        "simulated, one input at a time")
    parser.add_argument("--scores", action="store_true",
                        help="only the int8 rounding's error on the importance scores against "
                        "their distance to the thresholds (see above)")
    args = parser.parse_args()
    tune_allocator()
    reference = load_artifact(args.model)
    max_length = reference.meta.max_length
    encoded, labels = encode_split(reference.tokenizer, args.dataset, "test", max_length)
    if args.scores:
        simulated = load_artifact(args.model)
        simulate(simulated, None, True, rounding=fake_tensor)
        for line in score_noise(reference, simulated, encoded[: args.examples]):
            print(json.dumps(line), flush=True)
        return
    train, _ = encode_split(reference.tokenizer, args.dataset, "train", max_length)
    maxima = channel_maxima(reference, train[: args.calibration])
    cfg = BenchConfig(batch_size=32, max_examples=args.examples, min_tokens=0)

    one = BenchConfig(batch_size=1, max_examples=args.examples, min_tokens=0)
    ort_variants = {
        "ort int8 kernel (whole forward)": (lambda a: a.model.set_engine("ort", precision="int8")),
        "simulated: activations per input (ort's rounding), weights fp32":
            lambda a: simulate(a, None, True, rounding=fake_tensor),
        "simulated: activations per input, feed-forward output in fp32":
            lambda a: simulate(a, None, True, rounding=fake_tensor, fp32_parts=("ffn_out",)),
    }
    variants = {} if args.ort else {
        "int8 kernel (every linear)": lambda a: quantize_model(a.model),
        f"simulated: weights {WEIGHT_LEVELS * 2 + 1} levels + activations (the kernel's rounding)":
            lambda a: simulate(a, WEIGHT_LEVELS, True),
        f"simulated: weights only, {WEIGHT_LEVELS * 2 + 1} levels":
            lambda a: simulate(a, WEIGHT_LEVELS, False),
        "simulated: weights only, 255 levels": lambda a: simulate(a, 127, False),
        "simulated: activations only (per token, 256 levels)": lambda a: simulate(a, None, True),
        **{f"simulated: weights + activations, SmoothQuant alpha {alpha}":
           (lambda a, alpha=alpha: simulate(a, WEIGHT_LEVELS, True, smoothing(a, maxima, alpha)))
           for alpha in (0.5, 0.8)},
    }
    runs = [(name, apply, cfg) for name, apply in variants.items()]
    runs += [(name, apply, one) for name, apply in ort_variants.items()]
    for name, apply, config in runs:
        artifact = load_artifact(args.model)
        apply(artifact)
        result = agreement(artifact, reference, encoded, labels, config)
        print(json.dumps({"variant": name, "accuracy": result["accuracy"],
                          "keep_agreement": result["keep_agreement_vs_fp32"],
                          "label_agreement": result["label_agreement_vs_fp32"],
                          "max_logit_diff": result["max_logit_diff_vs_fp32"],
                          "examples": result["accuracy_examples"]}), flush=True)


if __name__ == "__main__":
    main()
