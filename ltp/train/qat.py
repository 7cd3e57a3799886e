"""Quantisation-aware training of the weights: the hard stage trains on the int8 grid that
the served int8 forward will use, so that quantising after training changes nothing.

Inside ``weights_on_int8_grid`` every encoder linear's weight is read through a fake
quantiser: rounded to ``levels`` steps per output channel, one scale ``max|w| / levels`` per
channel (as ``quantize_weight`` does), with the straight-through gradient (the rounding
passes gradients as if it were the identity). On exit the weights are left on the grid, so
the fp32 model is the one that was trained, and ONNX Runtime's int8 quantiser
(``ORT_WEIGHT_LEVELS``: the same grid) reproduces its weights exactly: the int8 forward then
differs from fp32 by the activations' rounding alone. Thresholds and importance scores are
unchanged (they are computed in fp32 in every precision).

Why: a model trained in fp32 has thresholds that sit close to many tokens' scores, and the
int8 weights' rounding moved enough of those tokens across them to cost more than a point on
one build (``reports/precision-amazon-food.md``: the weights' rounding is the larger of the
two error sources).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize

from ltp.core.quant import ORT_WEIGHT_LEVELS, PARTS


def fake_quantize(weight: torch.Tensor, levels: int = ORT_WEIGHT_LEVELS) -> torch.Tensor:
    """``weight`` (N, K) rounded to ``levels`` steps per output channel, straight through."""
    scale = weight.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
    grid = torch.round(weight.detach() / scale).clamp(-levels, levels) * scale
    return weight + (grid - weight).detach()


class _OnGrid(nn.Module):
    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.levels)


def encoder_linears(model) -> list[nn.Linear]:
    """The linears of an LTPModel that int8 quantises: each layer's ``PARTS``."""
    return [getattr(parts, name) for parts in model.encoder.layers for name in PARTS]


@contextmanager
def weights_on_int8_grid(model, levels: int = ORT_WEIGHT_LEVELS, enabled: bool = True):
    """Train ``model`` (an LTPModel) with its encoder linears' weights on the int8 grid; on
    exit the weights stay on it (see the module's docstring). ``enabled=False``: a no-op."""
    if not enabled:
        yield
        return
    linears = encoder_linears(model)
    for linear in linears:
        parametrize.register_parametrization(linear, "weight", _OnGrid(levels))
    try:
        yield
    finally:
        with torch.no_grad():
            for linear in linears:
                parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)
        model.rebuild()  # the fused projections and the family view see the new parameters
