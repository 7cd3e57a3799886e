"""Engines in eager PyTorch: the model's own modules (fp32, bf16, fp16, or fbgemm int8
linears) with fused Q/K/V projections.

* ``eager``: attention input by input on each one's own rows on the CPU: no padding, no
  masks, and each input's (H, n, n) probabilities stay in cache, where those of a padded
  (B, H, T, T) batch do not; a layer that needs no scores runs the fused kernel per input.
  On a GPU it pads for attention (one launch per operator instead of one per input).
* ``padded``: attention on the batch padded to its longest input, on every device.

Both train: gradients flow through them (the hard stage runs the compact forward).
"""

from __future__ import annotations

import torch

from ltp.core.attention import attend_first, attend_inputs, attend_padded
from ltp.core.engines.base import Engine
from ltp.core.packing import first_rows, live_from_counts


class EagerEngine(Engine):
    name = "eager"
    precisions = ("fp32", "bf16", "fp16", "int8")

    def _attend(self, qkv: torch.Tensor, counts: torch.Tensor, need_scores: bool):
        heads, dropout = self.encoder.num_heads, self.model.attention_dropout()
        if qkv.device.type != "cpu":
            return attend_padded(qkv, live_from_counts(counts), heads, need_scores, dropout)
        ctx, received = attend_inputs(qkv, counts.tolist(), heads, need_scores, dropout)
        return ctx, received if need_scores else None

    def attention(self, layer, rows, counts, need_scores):
        return self._attend(self.model.project(layer, rows, "qkv"), counts, need_scores)

    def feed_forward(self, layer, ctx, residual):
        return self.model.finish(layer, ctx, residual)

    def first_token(self, rows, counts):
        last = self.encoder.num_layers - 1
        cls = first_rows(rows, counts)  # (B, d)
        q = self.model.project(last, cls, "q")
        ctx = attend_first(q, self.model.project(last, rows, "kv"), live_from_counts(counts),
                           self.encoder.num_heads, self.model.attention_dropout())
        return self.model.finish(last, ctx, cls)


class PaddedEngine(EagerEngine):
    name = "padded"

    def _attend(self, qkv, counts, need_scores):
        return attend_padded(qkv, live_from_counts(counts), self.encoder.num_heads, need_scores,
                             self.model.attention_dropout())
