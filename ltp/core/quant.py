"""Int8 linear layers for the pruned forward.

Weights are int8, symmetric, one scale per output channel; activations are quantised at run
time by fbgemm's dynamic quantised linear (``quantized::linear_dynamic``), which computes
one 8-bit range per call (``WEIGHT_LEVELS`` says how many bits each side gets). Per-token
ranges come from a row scaling that the linear map lets through: ``W (x / a) * a = W x``
with ``a`` each row's largest magnitude, so every row of the scaled input lies in [-1, 1]
and the one range fits each token as well as its own would (far more tokens kept or
dropped as in fp32 than with one range for the packed batch; the figures are in the
reports/performance.md, Precision). The range is pinned to [-1, 1], so an input's result does
not depend on the other inputs in its batch.

Kernels were chosen by measurement against ``torch._int_mm`` (no fast CPU path), emulated
bf16 and one fbgemm call per input; the figures are in reports/performance.md, Precision.

Only the encoder's six matrices per layer (query, key, value, attention output,
feed-forward in and out) are int8; embeddings, LayerNorm, attention (scores and context) and
the head stay fp32, so importance scores, thresholds and keep decisions are computed in
fp32 as in every precision.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

INT8_FILE = "int8.safetensors"  # the int8 weights of an artifact, beside model.safetensors
# fbgemm without VNNI multiplies uint8 activations by int8 weights in pairs summed into
# int16 (vpmaddubsw): 255 * 127 * 2 overflows, 255 * 63 * 2 = 32,130 does not. So weights
# use 7 bits (+-63) and activations their full 8 bits, on every CPU (exact in int16, and
# closer to fp32 here than the usual 7-bit activations: 94.7% against 93.7% of keep
# decisions equal to fp32's on MiniLM; 8-bit weights with 8-bit activations saturated,
# with errors up to half the output's magnitude on random weights).
REDUCE_RANGE = False
WEIGHT_LEVELS = 63
# ONNX Runtime's quantize_dynamic: symmetric int8 weights per output channel on [-127, 127],
# one scale max|w| / 127 per channel (``ltp.core.engines.ort.quantize_graph``)
ORT_WEIGHT_LEVELS = 127
PARTS = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")  # LayerParts fields


def quantize_weight(weight: torch.Tensor, levels: int = WEIGHT_LEVELS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 (+-``levels``, at most 127): (N, K) fp32 -> (N, K)
    int8 and (N,) fp32 scales."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / levels
    q = torch.round(weight / scale[:, None]).clamp(-levels, levels).to(torch.int8)
    return q, scale


def _prepack(weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
    """fbgemm's packed form of a per-channel int8 weight."""
    zero = torch.zeros(scale.numel(), dtype=torch.long)
    with warnings.catch_warnings():  # quantised tensors are deprecated, the kernels are not
        warnings.simplefilter("ignore")
        qweight = torch._make_per_channel_quantized_tensor(weight, scale.double(), zero, 0)
        return torch.ops.quantized.linear_prepack(qweight, bias)


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights; fp32 in and out.

    Its state dict holds the dequantised fp32 ``weight`` and ``bias``, so a model that holds
    it still saves as a standard Hugging Face checkpoint; the int8 weights themselves are
    written apart (``int8_state``).
    """

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
                 per_token: bool = True) -> None:
        super().__init__()
        if weight.dtype != torch.int8:
            raise ValueError(f"weight must be int8, got {weight.dtype}")
        self.out_features, self.in_features = weight.shape
        self.weight_int8, self.weight_scale = weight.contiguous(), scale.float().contiguous()
        self.bias_fp32 = bias.detach().float().contiguous()
        self.per_token = per_token
        self._range_row = torch.zeros(self.in_features)  # spans [-1, 1]: see forward
        self._range_row[:2] = torch.tensor([1.0, -1.0])
        # per token: the bias is added after the rows are scaled back
        self._packed = _prepack(self.weight_int8, self.weight_scale,
                                None if per_token else self.bias_fp32)

    @classmethod
    def from_linear(cls, linear: nn.Linear, per_token: bool = True) -> Int8Linear:
        weight, scale = quantize_weight(linear.weight)
        return cls(weight, scale, linear.bias.detach(), per_token)

    @classmethod
    def concat(cls, linears: list[Int8Linear]) -> Int8Linear:
        """One linear for several that share their input (fused Q/K/V): per-channel scales
        concatenate exactly."""
        return cls(torch.cat([lin.weight_int8 for lin in linears]),
                   torch.cat([lin.weight_scale for lin in linears]),
                   torch.cat([lin.bias_fp32 for lin in linears]), linears[0].per_token)

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]  # (N, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()  # (M, K)
        if not self.per_token:
            out = torch.ops.quantized.linear_dynamic(rows, self._packed, REDUCE_RANGE)
            return out.view(*x.shape[:-1], self.out_features)
        m = rows.shape[0]
        # each row's largest magnitude, without writing |rows| out (faster than abs().amax)
        amax = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
        amax = amax.clamp_min_(1e-6)  # (M, 1)
        # one extra row spanning [-1, 1] pins fbgemm's range to that of every scaled row, so
        # each token's quantisation (and result) is the same whatever else is in the batch
        scaled = rows.new_empty(m + 1, self.in_features)
        scaled[m] = self._range_row
        torch.div(rows, amax, out=scaled[:m])
        out = torch.ops.quantized.linear_dynamic(scaled, self._packed, REDUCE_RANGE)[:m]
        out = torch.addcmul(self.bias_fp32, out, amax)
        return out.view(*x.shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination, prefix, keep_vars):  # noqa: ANN001
        destination[prefix + "weight"] = self.dequantized_weight()
        destination[prefix + "bias"] = self.bias_fp32.clone()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def is_int8(model: nn.Module) -> bool:
    """Does the model run any int8 linear?"""
    return any(isinstance(m, Int8Linear) for m in model.modules())


def int8_state(model) -> dict[str, torch.Tensor]:
    """The int8 weights, scales and biases of an LTPModel's encoder layers, by family-neutral
    names (``layers.{i}.{part}.weight|scale|bias``)."""
    out: dict[str, torch.Tensor] = {}
    for i, parts in enumerate(model.encoder.layers):
        for name in PARTS:
            lin = getattr(parts, name)
            if isinstance(lin, Int8Linear):
                weight, scale, bias = lin.weight_int8, lin.weight_scale, lin.bias_fp32
            else:
                (weight, scale), bias = quantize_weight(lin.weight), lin.bias.detach().float()
            key = f"layers.{i}.{name}"
            out |= {f"{key}.weight": weight, f"{key}.scale": scale, f"{key}.bias": bias}
    return out


def quantize_model(model, state: dict[str, torch.Tensor] | None = None, per_token: bool = True,
                   which: tuple[str, ...] | Callable[[int], tuple[str, ...]] = PARTS) -> None:
    """Swap an LTPModel's encoder linears for ``Int8Linear`` in place (CPU only).

    ``state`` holds saved int8 weights (``int8_state``); without it the fp32 weights are
    quantised now. ``which``: the ``PARTS`` to quantise, in every layer or per layer index.
    """
    if model.threshold_delta.device.type != "cpu":
        raise ValueError("int8 runs on the CPU only (fbgemm)")
    state = state if state is not None else int8_state(model)
    names = {id(m): n for n, m in model.hf.named_modules()}
    for i, parts in enumerate(model.encoder.layers):
        for part in which(i) if callable(which) else which:
            key = f"layers.{i}.{part}"
            lin = Int8Linear(state[f"{key}.weight"], state[f"{key}.scale"], state[f"{key}.bias"],
                             per_token)
            parent, _, attr = names[id(getattr(parts, part))].rpartition(".")
            setattr(model.hf.get_submodule(parent), attr, lin)
    model.hf.float()
    model.rebuild()


def save_int8(model, out_dir: str | Path) -> Path:
    """Write the model's int8 weights into an artifact folder (``int8.safetensors``)."""
    from safetensors.torch import save_file

    path = Path(out_dir) / INT8_FILE
    save_file({k: v.contiguous() for k, v in int8_state(model).items()}, str(path))
    return path


def load_int8(artifact_dir: str | Path) -> dict[str, torch.Tensor] | None:
    """The int8 weights saved in an artifact folder, or None when it has none."""
    from safetensors.torch import load_file

    path = Path(artifact_dir) / INT8_FILE
    return load_file(str(path)) if path.is_file() else None
