"""The torch modules exported to ONNX: a layer's fused projections, its feed-forward part,
the two as one step, and the whole pruned forward of one input as one graph (the
embeddings, every layer, its importance scores, its keep rule and its gather as NonZero /
Gather in the graph, and the head, from token ids to logits) for ONNX Runtime to run in one
call (no torch operator runs between calls, whose thread pool would compete with ONNX
Runtime's for the cores).

Written in torch with the same formulas as the layer loop (``LTPModel._run_compact``,
``ltp.core.scoring``) and exported once per model: thresholds and which layers prune are
constants of the graph. ``WholeForward`` takes one input a call, so no padding and no
masks: attention is each input over its own tokens, as the eager engine computes it.
``PackedForward`` takes several inputs, each its own graph input, packed one after another:
every matrix multiply, LayerNorm and GELU runs once over all their rows (each weight read
once a call for all of them, and no padding), attention, scores and keep rule input by
input over its own rows. Only the threshold rule (``strategy="threshold"``) runs this way;
top-k models run layer by layer. Fused tokens (``PruningConfig.fuse``) run in
``WholeForward`` only, one input a call.
"""

from __future__ import annotations

import torch
from torch import nn


class Projection(nn.Module):
    """Fused projections as one MatMul + Add (what dynamic quantisation rewrites)."""

    def __init__(self, linears: list[nn.Linear], scales: tuple[float, ...] | None = None) -> None:
        super().__init__()
        scales = scales or (1.0,) * len(linears)  # folded into each part's weight and bias
        self.weight = nn.Parameter(torch.cat(
            [lin.weight * s for lin, s in zip(linears, scales, strict=True)]).t().contiguous())
        self.bias = nn.Parameter(torch.cat([lin.bias * s for lin, s in zip(linears, scales, strict=True)]))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.matmul(rows, self.weight) + self.bias


class FeedForward(nn.Module):
    """The layer after attention, as the model computes it (``LTPModel.finish``)."""

    def __init__(self, parts) -> None:
        super().__init__()
        self.attn_out, self.attn_norm = Projection([parts.attn_out]), parts.attn_norm
        self.ffn_in, self.ffn_out = Projection([parts.ffn_in]), Projection([parts.ffn_out])
        self.ffn_norm, self.activation = parts.ffn_norm, parts.activation

    def forward(self, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        a = self.attn_norm(self.attn_out(ctx) + residual)
        return self.ffn_norm(self.ffn_out(self.activation(self.ffn_in(a))) + a)


class Step(nn.Module):
    """A layer's feed-forward, then the next layer's Q/K/V projection: one call where no
    gather comes between them."""

    def __init__(self, parts, following) -> None:
        super().__init__()
        self.ffn = FeedForward(parts)
        self.qkv = Projection([following.query, following.key, following.value])

    def forward(self, ctx: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.ffn(ctx, residual)
        return rows, self.qkv(rows)


class WholeForward(nn.Module):
    """Token ids and type ids (n,) of one input, classifier token first -> its logits (1, C),
    then, for each layer that prunes, the positions it kept (k,) among the rows it received,
    named ``KEPT`` by layer (``packed_counts`` turns them into the tokens kept after each
    layer). The counts come out of the graph as the gathers' own index tensors, so they cost
    no operator."""

    def __init__(self, model) -> None:
        super().__init__()
        enc, pruning = model.encoder, model.pruning
        self.hf = model.hf  # the embeddings and the head are the wrapped model's modules
        self.embed, self.head = enc.embed, enc.head
        self.heads, self.width = enc.num_heads, enc.hidden_size
        # the queries come scaled by 1/sqrt(head size) out of the projection: no node for it
        scale = (self.width // self.heads) ** -0.5
        self.qkv = nn.ModuleList(Projection([p.query, p.key, p.value], (scale, 1.0, 1.0))
                                 for p in enc.layers)
        self.ffn = nn.ModuleList(FeedForward(p) for p in enc.layers)
        thresholds = [float(t) for t in model.thresholds().detach()]
        self.thresholds = thresholds[:-1]
        self.prunes = [model._prunes(i, torch.tensor(t)) for i, t in enumerate(self.thresholds)]
        self.normalizer, self.median = pruning.normalizer, pruning.score_norm == "median"
        self.fuse = pruning.fuse
        self.register_buffer("first", torch.zeros(1, dtype=torch.long), persistent=False)
        self.register_buffer("infinity", torch.full((1,), float("inf")), persistent=False)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """(H, nq, dh) scaled queries, (H, n, dh) -> context (nq, d) and fp32 probabilities
        (H, nq, n)."""
        probs = torch.softmax(torch.matmul(q, k.transpose(1, 2)), dim=-1)
        return torch.matmul(probs, v).transpose(0, 1).reshape(-1, self.width), probs

    def _split(self, qkv: torch.Tensor):
        """(n, 3d) -> q, k, v (H, n, dh): one Reshape, one Transpose, one Split in the graph."""
        heads = qkv.view(-1, 3 * self.heads, self.width // self.heads).transpose(0, 1)
        return heads.split(self.heads, dim=0)

    def _kept(self, received: torch.Tensor, threshold: float) -> torch.Tensor:
        """The keep rule of one input, every token live (``ltp.core.scoring``): the positions
        (k,) of the tokens whose score is at least ``threshold``, the classifier token always.

        Written as few operators as the rule allows (each costs a dispatch on every call): the
        score is compared as the attention received against the threshold times the scale,
        ``received >= threshold x scale``, with scale ``heads x N`` (fixed) or ``median x N``
        (median), rather than divided first. The classifier token's received attention is
        set to infinity (one ScatterElements): it is then kept whatever the bound, and ranks
        last in the median, which is the lower median of the m = n - 1 other tokens as
        torch.nanmedian gives it (the (n // 2)-th smallest of the n values, the largest of
        the n // 2 smallest); where m is 0 the median is the infinity, the bound infinite,
        and the classifier token alone is kept."""
        marked = received.scatter(0, self.first, self.infinity)
        if self.median:
            k = (torch._shape_as_tensor(marked) // 2).clamp_min(1)
            bound = torch.topk(marked, k, largest=False).values.max() * (threshold * self.normalizer)
        else:
            bound = threshold * self.heads * self.normalizer
        return (marked >= bound).nonzero().view(-1)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows = self.embed(ids[None], types[None])[0]  # (n, d)
        kept = []
        for i, threshold in enumerate(self.thresholds):
            q, k, v = self._split(self.qkv[i](rows))  # (H, n, dh)
            ctx, probs = self._attend(q, k, v)
            if self.prunes[i]:
                received = probs.sum(dim=(0, 1))
                index = self._kept(received, threshold)
                if self.fuse:
                    ctx, rows, index = self._fused(received, index, ctx, rows)
                ctx, rows = ctx.index_select(0, index), rows.index_select(0, index)
                kept.append(index)
            rows = self.ffn[i](ctx, rows)
        q, k, v = self._split(self.qkv[-1](rows))
        ctx, _ = self._attend(q[:, :1], k, v)  # the classifier token's query alone
        return (self.head(self.ffn[-1](ctx, rows[:1])), *kept)

    def _fused(self, received: torch.Tensor, index: torch.Tensor, *rows: torch.Tensor):
        """Fused tokens (``PruningConfig.fuse``, ``ltp.core.packing.gather_kept``): each of
        ``rows`` (n, d) with one more row, the dropped rows' mean weighted by the attention
        they received (their scores' weights: the scale cancels), and ``index`` with its
        position (n) after the kept ones where anything was dropped. Where nothing was, the
        extra row is 0 / 0 and never gathered."""
        weights = received.index_fill(0, index, 0.0)
        total = weights.sum()
        extra = (total > 0)[None].nonzero().view(-1) + torch._shape_as_tensor(received)
        grown = [torch.cat([r, (weights @ r / total)[None]]) for r in rows]
        return (*grown, torch.cat([index, extra]))


KEPT = "kept{}"  # the name of the output holding the positions layer {} kept


def packed_counts(lengths: list[int], outputs: dict, layers: int) -> list[list[int]]:
    """The tokens kept after each of ``layers`` layers by each input of ``lengths`` tokens
    run packed in one call (``PackedForward``; a lone input is one of one), from the graph's
    outputs by name: ``KEPT`` of a layer holds the rows it kept among the rows it received,
    every input's one after another, so an input's count is how many fall in its own span. A
    layer without an output prunes nothing and keeps what it received; the last keeps the
    classifier token alone."""
    import numpy as np

    sizes, counts = list(lengths), []
    for layer in range(layers - 1):
        kept = outputs.get(KEPT.format(layer))
        if kept is not None and len(sizes) == 1:
            sizes = [len(kept)]  # one input: everything kept is its own
        elif kept is not None:
            edges = np.cumsum([0, *sizes])
            sizes = np.diff(np.searchsorted(kept, edges)).tolist()
        counts.append(sizes)
    return [[*(layer[g] for layer in counts), 1] for g in range(len(lengths))]


class PackedForward(WholeForward):
    """Token ids and type ids of ``inputs`` inputs, each its own graph input (``ids{g}``,
    ``types{g}``: (n_g,)) -> their logits (G, C), then, for each layer that prunes, the rows
    it kept among the rows it received, every input's one after another (``packed_counts``
    turns them into each input's counts). Each input's figures are those ``WholeForward``
    gives it alone: only row-wise parts run packed, and attention, scores and keep rule see
    one input's rows at a time."""

    def __init__(self, model, inputs: int) -> None:
        super().__init__(model)
        if self.fuse:
            raise ValueError("fused tokens run one input a call (WholeForward)")
        self.inputs = inputs

    def forward(self, *feeds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts = [self.embed(feeds[2 * g][None], feeds[2 * g + 1][None])[0]
                 for g in range(self.inputs)]
        sizes = [part.shape[0] for part in parts]  # each input's rows, traced from its shape
        rows = torch.cat(parts)  # (N, d)
        kept = []
        for i, threshold in enumerate(self.thresholds):
            ctxs, index, start = [], [], 0
            for g, qkv in enumerate(self.qkv[i](rows).split(sizes)):
                ctx, probs = self._attend(*self._split(qkv))
                if self.prunes[i]:
                    keep = self._kept(probs.sum(dim=(0, 1)), threshold)
                    index.append(keep + start)  # its place among every input's rows
                    start, sizes[g] = start + sizes[g], keep.shape[0]
                ctxs.append(ctx)
            ctx = torch.cat(ctxs)
            if self.prunes[i]:
                index = torch.cat(index)
                ctx, rows = ctx.index_select(0, index), rows.index_select(0, index)
                kept.append(index)
            rows = self.ffn[i](ctx, rows)
        ctxs, firsts, start = [], [], 0
        for g, qkv in enumerate(self.qkv[-1](rows).split(sizes)):
            q, k, v = self._split(qkv)
            ctxs.append(self._attend(q[:, :1], k, v)[0])  # its classifier token's query alone
            firsts.append(torch.as_tensor(start))
            start = start + sizes[g]
        cls = rows.index_select(0, torch.stack(firsts))
        return (self.head(self.ffn[-1](torch.cat(ctxs), cls)), *kept)
