"""LTPModel: a HF sequence classifier wrapped with learned token pruning.

The encoder loop is ours; the weights are the wrapped model's. Modes:

* ``dense``   no pruning; equals the HF model.
* ``soft``    training: sigmoid masks multiplied into each layer's output, differentiable
              w.r.t. the thresholds; shapes unchanged.
* ``masked``  reference for the hard rule: dropped tokens are excluded as keys and queries
              but stay in the tensors.
* ``compact`` inference: kept tokens are gathered out after every layer's attention, so
              later layers really process fewer tokens.
* ``unpruned`` the compact forward's loop and engine with every token kept: the dense
              model on the same engine (what a speed-up is measured against).

``compact`` and ``unpruned`` run on packed rows through an engine (``ltp.core.engines``:
how the attention and the dense parts execute), chosen when the model is loaded. In every
pruned mode the last layer keeps only the classifier token: after its attention nothing
else reaches the head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ltp.core.arch import Encoder, encoder_of
from ltp.core.attention import attend, split_heads
from ltp.core.config import MODES, PruningConfig
from ltp.core.engines import Engine, make_engine
from ltp.core.engines.base import tensor_stamp
from ltp.core.flops import dense_kept, encoder_flops, model_flops
from ltp.core.packing import first_rows, gather_kept, live_from_counts, pack, unpack
from ltp.core.quant import Int8Linear
from ltp.core.scoring import keep_mask, normalize_scores, received_attention, soft_mask, topk_mask

if TYPE_CHECKING:
    from ltp.core.text import PaddedBatch

_PROJECTIONS = {"q": "query", "k": "key", "v": "value"}


@dataclass
class ForwardOutput:
    """Result of one forward pass, per example. FLOPs are computed when first read."""

    logits: torch.Tensor  # (B, C)
    input_tokens: torch.Tensor  # (B,) live tokens entering layer 0, on CPU
    kept_tokens: torch.Tensor  # (B, L) tokens kept after each layer, on CPU
    # (hidden size, feed-forward size, labels) for the FLOPs, and whether nothing was pruned
    dims: tuple[int, int, int] = (0, 0, 0)
    dense: bool = False
    # soft mode only: per pruning layer, the (B, T) masks and the live mask they apply to
    soft_masks: list[torch.Tensor] = field(default_factory=list)
    live: torch.Tensor | None = None
    # masked and soft modes: per pruning layer, the (B, T) importance scores and the live
    # tokens they were computed over (before that layer's keep rule)
    scores: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    # compact mode with track_tokens: (B, T) how many pruning layers (all but the last) kept
    # each input token; equal keep decisions in two runs give equal counts
    token_layers: torch.Tensor | None = None
    # with cls_states (dense, compact and unpruned modes): per layer, the (B, d) output of
    # each input's classifier token, the last one what the head reads
    cls_states: list[torch.Tensor] = field(default_factory=list)

    @cached_property
    def _full(self) -> torch.Tensor:
        return dense_kept(self.input_tokens, self.kept_tokens.shape[1])

    @cached_property
    def flops(self) -> torch.Tensor:
        """(B,) encoder FLOPs (paper formula), float64."""
        return encoder_flops(*self.dims[:2], self.input_tokens, self.kept_tokens)

    @cached_property
    def flops_dense(self) -> torch.Tensor:
        """(B,) the same with no pruning."""
        return encoder_flops(*self.dims[:2], self.input_tokens, self._full)

    @cached_property
    def model_flops(self) -> torch.Tensor:
        """(B,) whole-model FLOPs of the forward that ran."""
        return model_flops(*self.dims, self.input_tokens, self.kept_tokens, dense=self.dense)

    @cached_property
    def model_flops_dense(self) -> torch.Tensor:
        """(B,) whole-model FLOPs with no pruning."""
        return model_flops(*self.dims, self.input_tokens, self._full, dense=True)

    @cached_property
    def model_flops_unpruned(self) -> torch.Tensor:
        """(B,) whole-model FLOPs of the compact forward with nothing pruned: what an engine
        runs for the dense parent (every token in every layer, the last layer's classifier
        query alone, and only its classifier token kept after it)."""
        kept = self._full.clone()
        kept[:, -1] = 1
        return model_flops(*self.dims, self.input_tokens, kept, dense=False)


class LTPModel(nn.Module):
    """A BERT/RoBERTa/DistilBERT classifier with per-layer learned pruning thresholds."""

    def __init__(self, hf_model: nn.Module, pruning: PruningConfig | None = None,
                 engine: str = "eager") -> None:
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
        self.engine: Engine = make_engine(engine, self)

    def __setstate__(self, state: dict) -> None:
        # A copy (copy.deepcopy, pickle) shares no function with its original: the family
        # view's closures (embeddings, head), the fused projections and the engine are made
        # again over the copy's own modules.
        super().__setstate__(state)
        self.rebuild()

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

    def set_engine(self, engine: str | Engine, **options) -> Engine:
        """Run ``compact`` and ``unpruned`` on ``engine`` (a name of ``ltp.core.config.ENGINES``,
        made with ``options``, or an instance) from now on; returns it."""
        self.engine = engine if isinstance(engine, Engine) else make_engine(engine, self, **options)
        return self.engine

    def rebuild(self) -> None:
        """After the wrapped model's layers were replaced (int8): the family view, the fused
        projections and the engine are made again from the new layers."""
        self.encoder = encoder_of(self.hf)
        self._fused.clear()
        self.engine = make_engine(self.engine.name, self, **self.engine.options)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        mode: str = "compact",
        track_tokens: bool = False,
        cls_states: bool = False,
    ) -> ForwardOutput:
        """Run the classifier. Inputs are right-padded (B, T); position 0 is the classifier token.

        ``track_tokens`` (compact mode): also return, per input token, how many pruning
        layers kept it (``ForwardOutput.token_layers``). ``cls_states`` (dense, compact and
        unpruned modes): also return every layer's classifier-token output
        (``ForwardOutput.cls_states``), what hidden-state distillation compares.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if cls_states and mode not in ("dense", "compact", "unpruned"):
            raise ValueError(f"cls_states is for the dense, compact and unpruned modes, not {mode!r}")
        live = attention_mask.bool()
        enc = self.encoder
        dims = (enc.hidden_size, enc.intermediate_size, enc.num_labels)
        states: list[torch.Tensor] | None = [] if cls_states else None
        if mode == "compact" and not track_tokens and not cls_states and (
                done := self.engine.whole(input_ids, attention_mask, token_type_ids)) is not None:
            return ForwardOutput(logits=done[0], input_tokens=live.sum(dim=1).cpu(),
                                 kept_tokens=done[1], dims=dims)
        x = enc.embed(input_ids, token_type_ids)  # (B, T, d)
        extras: dict = {}
        if mode in ("compact", "unpruned"):
            cls, kept, survived = self._run_compact(x, live, mode == "compact", track_tokens,
                                                    states)
            if track_tokens:
                extras["token_layers"] = survived.cpu()
        elif mode == "dense":
            cls, kept = self._run_dense(x, live, states)
        elif mode == "soft":
            cls, kept, extras["soft_masks"], extras["scores"] = self._run_soft(x, live)
            extras["live"] = live
        else:
            cls, kept, extras["scores"] = self._run_masked(x, live)
        if states is not None:
            extras["cls_states"] = states
        return ForwardOutput(logits=enc.head(cls), input_tokens=live.sum(dim=1).cpu(),
                             kept_tokens=kept.cpu(), dims=dims,
                             dense=mode in ("dense", "unpruned"), **extras)

    def run(self, batch: PaddedBatch, **kwargs) -> ForwardOutput:
        """``forward`` on a padded batch; ``kwargs`` as ``forward``'s (mode, track_tokens,
        cls_states)."""
        return self(batch.input_ids, batch.attention_mask, batch.token_type_ids, **kwargs)

    # -- shared layer pieces ------------------------------------------------------------

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        p = self.encoder.hidden_dropout
        return F.dropout(x, p=p, training=True) if self.training and p > 0 else x

    def attention_dropout(self) -> float:
        return self.encoder.attn_dropout if self.training else 0.0

    def project(self, layer: int, x: torch.Tensor, which: str) -> torch.Tensor:
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
        stamp = tensor_stamp(*(p for lin in linears for p in (lin.weight, lin.bias)))
        cached = self._fused.get((layer, which))
        if cached is None or stamp is None or cached[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():
                weight = torch.cat([lin.weight for lin in linears])
                bias = torch.cat([lin.bias for lin in linears])
            cached = self._fused[(layer, which)] = (stamp, weight, bias)
        return F.linear(x, cached[1], cached[2])

    def finish(self, layer: int, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Output projection, residual + LayerNorm, feed-forward, residual + LayerNorm."""
        parts = self.encoder.layers[layer]
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
        q, k, v = split_heads(self.project(i, x, "qkv"), 3, self.encoder.num_heads)
        ctx, probs = attend(q, k, v, live, need_probs, self.attention_dropout(), weight)
        return self.finish(i, ctx.transpose(1, 2).flatten(2), x), probs

    def _run_dense(self, x: torch.Tensor, live: torch.Tensor, states: list | None = None):
        """No pruning: every layer keeps every live token; with ``states``, each layer's
        classifier-token rows appended to it."""
        for i in range(self.encoder.num_layers):
            x, _ = self._full_layer(i, x, live, False)
            if states is not None:
                states.append(x[:, 0])
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
        kept, masks, scored = [], [], []
        for i in range(last):
            x, probs = self._full_layer(i, x, live, True, weight)
            rows = weight if cumulative else live
            scores = self._scores(received_attention(probs, rows), rows)  # (B, T)
            scored.append((scores, live))
            mask = soft_mask(scores, thresholds[i], self.pruning.temperature, live)
            if cumulative:
                weight = mask = weight * mask
            else:  # the paper: the mask multiplies the layer's output
                x = x * mask.unsqueeze(-1).to(x.dtype)
            masks.append(mask)
            kept.append((mask.detach() > 0.5).sum(dim=1))
        x, _ = self._full_layer(last, x, live, False, weight)
        kept.append(torch.ones_like(live[:, 0], dtype=torch.long))
        return x[:, 0], torch.stack(kept, dim=1), masks, scored

    def dense_scores(self, batch: PaddedBatch) -> list[torch.Tensor]:
        """Each pruning layer's (B, T) importance scores with no token dropped, whatever the
        thresholds: the ranking a dense teacher gives (``ltp.train.ranking``)."""
        x = self.encoder.embed(batch.input_ids, batch.token_type_ids)
        _, _, scored = self._run_masked(x, batch.attention_mask.bool(), prune=False)
        return [scores for scores, _ in scored]

    def _run_masked(self, x: torch.Tensor, live: torch.Tensor, prune: bool = True):
        """Reference for the hard rule: dropped tokens stop being keys and queries but stay in
        the tensors. Returns, per pruning layer, the scores and the live tokens they were
        computed over; without ``prune`` no token is dropped."""
        thresholds, last = self.thresholds(), self.encoder.num_layers - 1
        n_in = live.sum(dim=1)
        kept, scores_out = [], []
        for i in range(last):
            x, probs = self._full_layer(i, x, live, True)
            scores = self._scores(received_attention(probs, live), live)  # (B, T)
            scores_out.append((scores, live))
            if prune:
                live = self._keep(i, scores, thresholds[i], live, n_in)
            kept.append(live.sum(dim=1))
        x, _ = self._full_layer(last, x, live, False)
        kept.append(torch.ones_like(n_in))
        return x[:, 0], torch.stack(kept, dim=1), scores_out

    # -- compact and unpruned: packed rows through the engine ------------------------------

    def _run_compact(self, x: torch.Tensor, live: torch.Tensor, prune: bool, track: bool = False,
                     states: list | None = None):
        """The layer loop on packed rows; ``prune`` false keeps every token (and runs the
        last layer on every token, as a dense model does); with ``states``, each layer's
        classifier-token rows appended to it."""
        engine, thresholds = self.engine, self.thresholds().detach()
        n_in = counts = live.sum(dim=1)  # (B,)
        rows = pack(x, live)  # (N, d)
        origin = torch.arange(live.shape[1], device=live.device).expand_as(live) if track else None
        # (B, T) and, where dropped tokens fuse, a column for the fused tokens (not returned)
        survived = live.new_zeros(live.shape[0], live.shape[1] + 1, dtype=torch.long) if track else None
        kept = []
        for i in range(self.encoder.num_layers - 1):
            prunes = prune and self._prunes(i, thresholds[i])  # if not, no scores are needed
            ctx, received = engine.attention(i, rows, counts, prunes)
            if prunes:
                live = live_from_counts(counts)
                scores = self._scores(unpack(received, live), live)  # (B, T)
                keep = self._keep(i, scores, thresholds[i], live, n_in)
                if not torch.equal(keep, live):  # something dropped: gather the kept rows
                    fuse = scores if self.pruning.fuse else None
                    ctx, rows, counts = gather_kept(keep, live, ctx, rows, fuse_weights=fuse)
                    if track:
                        origin = _follow(origin, keep, counts, x.shape[1] if fuse is not None
                                         else None)
            if track:
                survived.scatter_add_(1, origin, live_from_counts(counts).long())
            rows = engine.feed_forward(i, ctx, rows)
            if states is not None:
                states.append(first_rows(rows, counts))
            kept.append(counts)
        if prune:
            cls = engine.first_token(rows, counts)
            kept.append(torch.ones_like(counts))
        else:
            last = self.encoder.num_layers - 1
            ctx, _ = engine.attention(last, rows, counts, False)
            cls = first_rows(engine.feed_forward(last, ctx, rows), counts)
            kept.append(counts)
        if states is not None:
            states.append(cls)
        return cls, torch.stack(kept, dim=1), survived[:, :x.shape[1]] if track else None


def _follow(origin: torch.Tensor, keep: torch.Tensor, counts: torch.Tensor,
            fused: int | None = None) -> torch.Tensor:
    """The original column of every live slot after a gather: ``origin`` (B, T) of the slots
    before it, ``keep`` (B, T) the slots kept, ``counts`` (B,) how many -> (B, T'); with
    ``fused``, the column given to each input's fused token (its last slot, where it has
    one: ``counts`` then exceed the kept slots by one)."""
    live = live_from_counts(counts)
    moved = torch.zeros_like(live, dtype=torch.long)
    if fused is not None:
        has = (counts - keep.sum(dim=1)).bool()[:, None]
        origin = torch.cat([origin, torch.full_like(origin[:, :1], fused)], dim=1)
        keep = torch.cat([keep, has], dim=1)
    moved[live] = origin[keep]
    return moved
