"""LTPModel: a HF sequence classifier wrapped with learned token pruning.

The encoder loop is ours; the weights are the wrapped model's. Modes:

* ``dense``   no pruning; equals the HF model.
* ``soft``    training: sigmoid masks multiplied into each layer's output, differentiable
              w.r.t. the thresholds; shapes unchanged.
* ``masked``  reference for the hard rule: dropped tokens are excluded as keys and queries
              but stay in the tensors.
* ``compact`` inference: kept tokens are gathered out after every layer's attention, so
              later layers really process fewer tokens.

In every pruned mode the last layer keeps only the classifier token: after its attention
nothing else reaches the head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from ltp.core.arch import Encoder, LayerParts, encoder_of
from ltp.core.attention import attend, split_heads
from ltp.core.config import MODES, PruningConfig
from ltp.core.flops import dense_kept, encoder_flops, model_flops
from ltp.core.layouts import LAYOUTS
from ltp.core.quant import Int8Linear
from ltp.core.scoring import (
    keep_mask,
    live_from_counts,
    normalize_scores,
    received_attention,
    soft_mask,
    topk_mask,
)

if TYPE_CHECKING:
    from ltp.core.text import PaddedBatch

_PROJECTIONS = {"q": "query", "k": "key", "v": "value"}


@dataclass
class ForwardOutput:
    """Result of one forward pass, per example."""

    logits: torch.Tensor  # (B, C)
    input_tokens: torch.Tensor  # (B,) live tokens entering layer 0, on CPU
    kept_tokens: torch.Tensor  # (B, L) tokens kept after each layer, on CPU
    flops: torch.Tensor  # (B,) encoder FLOPs (paper formula), float64 on CPU
    flops_dense: torch.Tensor  # (B,) the same with no pruning
    model_flops: torch.Tensor  # (B,) whole-model FLOPs
    model_flops_dense: torch.Tensor  # (B,)
    # soft mode only: per pruning layer, the (B, T) masks and the live mask they apply to
    soft_masks: list[torch.Tensor] = field(default_factory=list)
    live: torch.Tensor | None = None
    # masked mode only: per pruning layer, the (B, T) importance scores and the live tokens
    # they were computed over (before that layer's keep rule)
    scores: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    # compact mode with track_tokens: (B, T) how many pruning layers (all but the last) kept
    # each input token; equal keep decisions in two runs give equal counts
    token_layers: torch.Tensor | None = None


class LTPModel(nn.Module):
    """A BERT/RoBERTa/DistilBERT classifier with per-layer learned pruning thresholds."""

    def __init__(self, hf_model: nn.Module, pruning: PruningConfig | None = None) -> None:
        super().__init__()
        self.hf = hf_model
        self.encoder: Encoder = encoder_of(hf_model)
        self.pruning = pruning or PruningConfig(num_layers=self.encoder.num_layers)
        if self.pruning.num_layers != self.encoder.num_layers:
            raise ValueError(
                f"pruning config has {self.pruning.num_layers} layers, "
                f"the model {self.encoder.num_layers}"
            )
        self.threshold_delta = nn.Parameter(torch.tensor(self.pruning.delta, dtype=torch.float32))
        self.register_buffer(
            "threshold_base", torch.tensor(self.pruning.base(), dtype=torch.float32)
        )
        # fused projection weights per (layer, "qkv" | "kv" | "q"): a stamp and the fp32/bf16
        # weight and bias, or an Int8Linear
        self._fused: dict[tuple[int, str], tuple | Int8Linear] = {}

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module signature
        # Thresholds are compared in fp32 whatever the weights' dtype: follow the device only.
        delta, base = self.threshold_delta.data, self.threshold_base
        super()._apply(fn, recurse)
        device = self.threshold_delta.device
        self.threshold_delta.data = delta.to(device=device, dtype=torch.float32)
        self.threshold_base = base.to(device=device, dtype=torch.float32)
        return self

    # -- thresholds ---------------------------------------------------------------------

    def thresholds(self) -> torch.Tensor:
        """Per-layer thresholds base + delta, (L,) fp32."""
        return self.threshold_base + self.threshold_delta

    def sync_config(self) -> PruningConfig:
        """Copy the learned deltas back into the pruning config and return it."""
        self.pruning.delta = [float(x) for x in self.threshold_delta.detach().cpu()]
        return self.pruning

    def set_pruning(self, pruning: PruningConfig) -> None:
        """Replace thresholds (ramp and deltas) in place."""
        if pruning.num_layers != self.encoder.num_layers:
            raise ValueError("pruning config does not match the number of layers")
        self.pruning = pruning
        device = self.threshold_delta.device
        with torch.no_grad():
            self.threshold_delta.copy_(torch.tensor(pruning.delta, device=device))
            self.threshold_base.copy_(torch.tensor(pruning.base(), device=device))

    # -- forward ------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        mode: str = "compact",
        layout: str = "packed",
        track_tokens: bool = False,
    ) -> ForwardOutput:
        """Run the classifier. Inputs are right-padded (B, T); position 0 is the classifier token.

        ``track_tokens`` (compact mode): also return, per input token, how many pruning
        layers kept it (``ForwardOutput.token_layers``).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        live = attention_mask.bool()
        x = self.encoder.embed(input_ids, token_type_ids)  # (B, T, d)
        scores: list[tuple[torch.Tensor, torch.Tensor]] = []
        masks: list[torch.Tensor] = []
        if mode == "compact":
            cls, kept, survived = self._run_compact(x, live, LAYOUTS[layout], track_tokens)
        elif mode == "dense":
            cls, kept = self._run_dense(x, live)
        elif mode == "soft":
            cls, kept, masks = self._run_soft(x, live)
        else:
            cls, kept, scores = self._run_masked(x, live)
        logits = self.encoder.head(cls)
        out = self._output(logits, live.sum(dim=1).cpu(), kept.cpu(), mode, masks, live)
        out.scores = scores
        if mode == "compact" and track_tokens:
            out.token_layers = survived.cpu()
        return out

    def run(self, batch: PaddedBatch, **kwargs) -> ForwardOutput:
        """``forward`` on a padded batch; ``kwargs`` as ``forward``'s (mode, layout, ...)."""
        return self(batch.input_ids, batch.attention_mask, batch.token_type_ids, **kwargs)

    def _output(self, logits, n_in, kept, mode, masks, live) -> ForwardOutput:
        enc = self.encoder
        d, d_ff, c = enc.hidden_size, enc.intermediate_size, enc.num_labels
        full = dense_kept(n_in, enc.num_layers)
        return ForwardOutput(
            logits=logits,
            input_tokens=n_in,
            kept_tokens=kept,
            flops=encoder_flops(d, d_ff, n_in, kept),
            flops_dense=encoder_flops(d, d_ff, n_in, full),
            model_flops=model_flops(d, d_ff, c, n_in, kept, dense=mode == "dense"),
            model_flops_dense=model_flops(d, d_ff, c, n_in, full, dense=True),
            soft_masks=masks,
            live=live if mode == "soft" else None,
        )

    # -- shared layer pieces ------------------------------------------------------------

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        p = self.encoder.hidden_dropout
        return F.dropout(x, p=p, training=True) if self.training and p > 0 else x

    def _attn_dropout(self) -> float:
        return self.encoder.attn_dropout if self.training else 0.0

    def _project(self, layer: int, x: torch.Tensor, which: str) -> torch.Tensor:
        """One matmul for the layer's projections named in ``which`` ("qkv", "kv", "q")."""
        linears = [getattr(self.encoder.layers[layer], _PROJECTIONS[c]) for c in which]
        if isinstance(linears[0], Int8Linear):  # int8 weights never change: fuse once
            fused = self._fused.get((layer, which))
            if fused is None:
                fused = self._fused[(layer, which)] = Int8Linear.concat(linears)
            return fused(x)
        if torch.is_grad_enabled() and linears[0].weight.requires_grad:
            weight = torch.cat([lin.weight for lin in linears])
            bias = torch.cat([lin.bias for lin in linears])
            return F.linear(x, weight, bias)
        # inference: concatenate once, and again only when the weights change or move
        stamp = tuple((p._version, p.data_ptr()) for lin in linears for p in (lin.weight, lin.bias))
        cached = self._fused.get((layer, which))
        if cached is None or cached[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():
                weight = torch.cat([lin.weight for lin in linears])
                bias = torch.cat([lin.bias for lin in linears])
            cached = self._fused[(layer, which)] = (stamp, weight, bias)
        return F.linear(x, cached[1], cached[2])

    def _finish(self, parts: LayerParts, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Output projection, residual + LayerNorm, feed-forward, residual + LayerNorm."""
        a = parts.attn_norm(self._dropout(parts.attn_out(ctx)) + residual)
        h = parts.ffn_out(parts.activation(parts.ffn_in(a)))
        return parts.ffn_norm(self._dropout(h) + a)

    # -- dense / soft / masked: shapes stay (B, T, d) ------------------------------------

    def _scores(self, received: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Importance scores from the attention each token received (B, T), in this model's
        score scale; ``rows`` are the live query rows (or soft keep weights)."""
        return normalize_scores(received, rows, self.encoder.num_heads, self.pruning.normalizer,
                                self.pruning.score_norm)

    def _keep(self, layer: int, scores, threshold, live, n_in) -> torch.Tensor:
        """The hard keep set after ``layer``: threshold rule, or top-k for the baseline."""
        if self.pruning.strategy == "topk":
            ratio = self.pruning.keep_ratios[layer]
            return topk_mask(scores, live, torch.ceil(n_in * ratio).long().clamp_min(1))
        return keep_mask(scores, threshold, live)

    def _prunes(self, layer: int, threshold: torch.Tensor) -> bool:
        """Can this layer drop anything? Scores are >= 0, so a threshold <= 0 keeps all."""
        if self.pruning.strategy == "topk":
            return self.pruning.keep_ratios[layer] < 1.0
        return bool(threshold > 0)

    def _full_layer(self, i: int, x: torch.Tensor, live: torch.Tensor, need_probs: bool,
                    weight: torch.Tensor | None = None):
        """Layer ``i`` on (B, T, d), shapes unchanged: its output and, when asked, the
        attention probabilities; ``weight`` (B, T) are soft keep probabilities of the keys."""
        q, k, v = split_heads(self._project(i, x, "qkv"), 3, self.encoder.num_heads)
        ctx, probs = attend(q, k, v, live, need_probs, self._attn_dropout(), weight)
        return self._finish(self.encoder.layers[i], ctx.transpose(1, 2).flatten(2), x), probs

    def _run_dense(self, x: torch.Tensor, live: torch.Tensor):
        """No pruning: every layer keeps every live token."""
        for i in range(self.encoder.num_layers):
            x, _ = self._full_layer(i, x, live, False)
        n_in = live.sum(dim=1)
        return x[:, 0], n_in.unsqueeze(1).repeat(1, self.encoder.num_layers)

    def _run_soft(self, x: torch.Tensor, live: torch.Tensor):
        """Training: a differentiable sigmoid mask per pruning layer, shapes unchanged.

        The "cumulative" style is the relaxation of masked mode: each token carries a
        cumulative keep probability (the product of its masks so far), which weights it as a
        key and as a query row of the score; with 0/1 masks it is exactly the masked
        reference. The "paper" style multiplies each layer's mask into its output instead.
        """
        thresholds, last = self.thresholds(), self.encoder.num_layers - 1
        cumulative = self.pruning.soft_style == "cumulative"
        weight = live.float() if cumulative else None  # (B, T) cumulative keep probability
        kept, masks = [], []
        for i in range(last):
            x, probs = self._full_layer(i, x, live, True, weight)
            rows = weight if cumulative else live
            scores = self._scores(received_attention(probs, rows), rows)  # (B, T)
            mask = soft_mask(scores, thresholds[i], self.pruning.temperature, live)
            if cumulative:
                weight = mask = weight * mask
            else:  # the paper: the mask multiplies the layer's output
                x = x * mask.unsqueeze(-1).to(x.dtype)
            masks.append(mask)
            kept.append((mask.detach() > 0.5).sum(dim=1))
        x, _ = self._full_layer(last, x, live, False, weight)
        kept.append(torch.ones_like(live[:, 0], dtype=torch.long))
        return x[:, 0], torch.stack(kept, dim=1), masks

    def _run_masked(self, x: torch.Tensor, live: torch.Tensor):
        """Reference for the hard rule: dropped tokens stop being keys and queries but stay in
        the tensors. Returns, per pruning layer, the scores and the live tokens they were
        computed over."""
        thresholds, last = self.thresholds(), self.encoder.num_layers - 1
        n_in = live.sum(dim=1)
        kept, scores_out = [], []
        for i in range(last):
            x, probs = self._full_layer(i, x, live, True)
            scores = self._scores(received_attention(probs, live), live)  # (B, T)
            scores_out.append((scores, live))
            live = self._keep(i, scores, thresholds[i], live, n_in)
            kept.append(live.sum(dim=1))
        x, _ = self._full_layer(last, x, live, False)
        kept.append(torch.ones_like(n_in))
        return x[:, 0], torch.stack(kept, dim=1), scores_out

    # -- compact: kept tokens are gathered out --------------------------------------------

    def _run_compact(self, x: torch.Tensor, live: torch.Tensor, layout, track: bool = False):
        thresholds = self.thresholds().detach()
        n_in = live.sum(dim=1)
        rows = layout.rows(x, live)  # packed (N, d) or padded (B, T, d)
        kept = []
        origin = torch.arange(live.shape[1], device=live.device).expand_as(live) if track else None
        survived = torch.zeros_like(live, dtype=torch.long) if track else None  # (B, T)
        for i in range(self.encoder.num_layers - 1):
            with record_function(f"ltp.layer{i}"):  # per-layer ranges for ltp.bench.profiling
                rows, new_live, keep = self._compact_layer(i, rows, live, thresholds[i], n_in,
                                                           layout)
            if track:  # original column of every live slot, and how many layers each survived
                if keep is not None:
                    moved = torch.zeros_like(new_live, dtype=torch.long)
                    moved[new_live] = origin[keep]
                    origin = moved
                survived.scatter_add_(1, origin, new_live.long())
            live = new_live
            kept.append(live.sum(dim=1))
        with record_function(f"ltp.layer{self.encoder.num_layers - 1}"):
            cls = self._last_layer(rows, live, layout)
        kept.append(torch.ones_like(live[:, 0], dtype=torch.long))
        return cls, torch.stack(kept, dim=1), survived

    def _compact_layer(self, i: int, rows, live, threshold, n_in, layout):
        """One layer on the live rows: (rows, live after it, keep mask or None if all stay)."""
        can_prune = self._prunes(i, threshold)  # if not, no scores are needed
        ctx, received = layout.attend(self._project(i, rows, "qkv"), live,
                                      self.encoder.num_heads, can_prune,
                                      self._attn_dropout())  # rows of (.., d)
        parts = self.encoder.layers[i]
        if can_prune:
            keep = self._keep(i, self._scores(received, live), threshold, live, n_in)
        if not can_prune or torch.equal(keep, live):  # nothing dropped: no gather needed
            return self._finish(parts, ctx, rows), live, None
        new_live = live_from_counts(keep.sum(dim=1))  # (B, T')
        ctx_kept = layout.keep_rows(ctx, live, keep, new_live)
        residual = layout.keep_rows(rows, live, keep, new_live)
        return self._finish(parts, ctx_kept, residual), new_live, keep

    def _last_layer(self, rows, live, layout) -> torch.Tensor:
        """Only the classifier token's row feeds the head: one query, full keys and values."""
        last = self.encoder.num_layers - 1
        heads = self.encoder.num_heads
        cls = layout.first_rows(rows, live)  # (B, d)
        k, v = split_heads(layout.to_padded(self._project(last, rows, "kv"), live), 2, heads)
        (q,) = split_heads(self._project(last, cls.unsqueeze(1), "q"), 1, heads)  # (B, H, 1, dh)
        ctx, _ = attend(q, k, v, live, False, self._attn_dropout())  # (B, H, 1, dh)
        return self._finish(self.encoder.layers[last], ctx.flatten(1), cls)  # (B, d)
