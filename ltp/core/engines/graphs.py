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
``GroupForward`` takes a right-padded group of inputs of similar length: ONNX Runtime's
cost between operators, paid once a call, is shared by the group, and its matrix
multiplies get more rows; masks keep each input's attention, scores and keep rule its own,
and each pruning layer gathers every input's kept tokens to the front, cut to the group's
longest. Only the threshold rule (``strategy="threshold"``) runs this way; top-k models run
layer by layer.
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
    named ``KEPT`` by layer (``kept_counts`` turns them into the tokens kept after each
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

        The classifier token's received attention is replaced by an infinity: its score is
        then infinite (kept without a node of its own), and it ranks last in the median,
        which is the lower median of the m = n - 1 other tokens as torch.nanmedian gives it
        (the (n // 2)-th smallest of the n values; where m is 0, nothing but the classifier
        token is left to keep)."""
        # (a constant infinity fed to the Concat fails the exporter's folding: made in graph)
        rest = torch.cat([received[:1] * 0 + float("inf"), received[1:]])
        if self.median:
            k = (torch._shape_as_tensor(rest)[0] // 2).clamp_min(1)
            # the infinity as the median (m = 0) becomes a finite bound far above any
            # attention received (at most heads x tokens), so that the classifier token's
            # score stays infinite rather than inf / inf
            median = torch.topk(rest, k, largest=False).values[-1].clamp(1e-12, 1e30)
            scores = rest / (median * self.normalizer)
        else:
            scores = rest / (self.heads * self.normalizer)
        return (scores >= threshold).nonzero().squeeze(1)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows = self.embed(ids[None], types[None])[0]  # (n, d)
        kept = []
        for i, threshold in enumerate(self.thresholds):
            q, k, v = self._split(self.qkv[i](rows))  # (H, n, dh)
            ctx, probs = self._attend(q, k, v)
            if self.prunes[i]:
                index = self._kept(probs.sum(dim=(0, 1)), threshold)
                ctx, rows = ctx.index_select(0, index), rows.index_select(0, index)
                kept.append(index)
            rows = self.ffn[i](ctx, rows)
        q, k, v = self._split(self.qkv[-1](rows))
        ctx, _ = self._attend(q[:, :1], k, v)  # the classifier token's query alone
        return (self.head(self.ffn[-1](ctx, rows[:1])), *kept)


KEPT = "kept{}"  # the name of the output holding the positions layer {} kept


def kept_counts(tokens: int, outputs: dict, layers: int) -> list[int]:
    """The tokens kept after each of ``layers`` layers of one input of ``tokens`` tokens,
    from ``WholeForward``'s outputs by name (``KEPT`` of each layer that prunes): a layer
    without an output prunes nothing and keeps what it received, and the last keeps the
    classifier token alone."""
    counts = []
    for layer in range(layers - 1):
        kept = outputs.get(KEPT.format(layer))
        tokens = tokens if kept is None else len(kept)
        counts.append(tokens)
    return [*counts, 1]


class GroupForward(WholeForward):
    """Token ids, type ids and attention mask (B, T) of right-padded inputs, classifier token
    first -> logits (B, C) and the tokens kept after each layer (B, L) as floats; each input's
    figures are those ``WholeForward`` gives it alone."""

    def _scores_of(self, received: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        """The scores of ``WholeForward._kept`` for each row of (B, T), over its live tokens."""
        if not self.median:
            return received / (self.heads * self.normalizer)
        # padding and one extra column stand in as infinities, as the lone input's do
        rest = torch.cat([received[:, 1:].masked_fill(~live[:, 1:], float("inf")),
                          received[:, :1] * 0 + float("inf")], dim=1)
        ranked = torch.topk(rest, rest.shape[1], dim=1, largest=False).values  # ascending
        k = (live.sum(dim=1, keepdim=True) // 2).clamp_min(1) - 1  # the lower median's place
        median = ranked.gather(1, k).clamp_min(1e-12)  # (B, 1)
        return received / (median * self.normalizer)

    def _attend_masked(self, q, k, v, live):
        """(B, H, nq, dh) scaled queries, (B, H, n, dh), live keys (B, n) -> context
        (B, nq, d) and probabilities (B, H, nq, n), zero on padded keys."""
        bias = (~live).float()[:, None, None, :] * -1e30
        probs = torch.softmax(torch.matmul(q, k.transpose(2, 3)) + bias, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2)
        return ctx.reshape(ctx.shape[0], ctx.shape[1], self.width), probs

    def _split_group(self, qkv: torch.Tensor):
        """(B, n, 3d) -> q, k, v (B, H, n, dh)."""
        b = qkv.shape[0]
        heads = qkv.view(b, qkv.shape[1], 3 * self.heads, self.width // self.heads).transpose(1, 2)
        return heads.split(self.heads, dim=1)

    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        live = mask > 0
        rows = self.embed(ids, types) * live[:, :, None].float()  # (B, T, d), padding at 0
        kept = []
        for i, threshold in enumerate(self.thresholds):
            q, k, v = self._split_group(self.qkv[i](rows))
            ctx, probs = self._attend_masked(q, k, v, live)
            if self.prunes[i]:
                # attention received from live queries, summed over heads: (B, T)
                received = torch.matmul(live.float()[:, None, :], probs.sum(dim=1))[:, 0]
                keep = (self._scores_of(received, live) >= threshold) & live
                keep = torch.cat([torch.ones_like(keep[:, :1]), keep[:, 1:]], dim=1)
                # kept tokens first, in their order: the top of keep * 2T - position
                place = torch.ones_like(keep[0], dtype=torch.long).cumsum(0) - 1  # 0, 1, ... (T,)
                width = place.shape[0]
                order = torch.topk(keep.long() * (2 * width) - place, width, dim=1).indices
                count = keep.sum(dim=1)
                cols = (place < count.max()).nonzero().squeeze(1)  # the longest's kept
                order = order.index_select(1, cols)  # (B, K)
                b, n = order.shape[0], order.shape[1]
                flat = (order + (torch.ones_like(count).cumsum(0) - 1)[:, None] * width).reshape(-1)
                ctx = ctx.reshape(-1, self.width).index_select(0, flat).view(b, n, self.width)
                rows = rows.reshape(-1, self.width).index_select(0, flat).view(b, n, self.width)
                live = place.index_select(0, cols)[None, :] < count[:, None]
            rows = self.ffn[i](ctx, rows) * live[:, :, None].float()  # padded rows held at 0
            kept.append(live.sum(dim=1).float())
        q, k, v = self._split_group(self.qkv[-1](rows))
        ctx, _ = self._attend_masked(q[:, :, :1], k, v, live)  # each classifier token's query
        kept.append(live[:, 0].float())
        cls = self.ffn[-1](ctx[:, 0], rows[:, 0])
        return self.head(cls), torch.stack(kept, dim=1)
