"""Tokenising texts and padding token-id lists into model batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Encoded:
    """One tokenised input."""

    input_ids: list[int]
    token_type_ids: list[int] | None

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)


@dataclass
class PaddedBatch:
    """Right-padded model inputs, shape (B, T)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None

    def to(self, device: torch.device | str) -> PaddedBatch:
        tt = self.token_type_ids
        return PaddedBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            tt.to(device) if tt is not None else None,
        )

    @property
    def live(self) -> torch.Tensor:
        """(B, T) bool: the real tokens."""
        return self.attention_mask.bool()


def encode(
    tokenizer,
    texts: list[str],
    pairs: list[str] | None = None,
    max_length: int = 128,
    truncate: bool = True,
) -> list[Encoded]:
    """Tokenise texts (and optional second texts, None where an input has none) without
    padding."""
    if pairs is not None and any(p is None for p in pairs):
        if all(p is None for p in pairs):
            pairs = None
        else:  # a mixed batch: singles and pairs tokenised apart, then put back in order
            singles = [i for i, p in enumerate(pairs) if p is None]
            doubles = [i for i, p in enumerate(pairs) if p is not None]
            out: list[Encoded | None] = [None] * len(texts)
            for group, second in ((singles, None), (doubles, [pairs[i] for i in doubles])):
                encoded = encode(tokenizer, [texts[i] for i in group], second, max_length, truncate)
                for i, e in zip(group, encoded, strict=True):
                    out[i] = e
            return out
    out = tokenizer(
        texts,
        pairs,
        truncation=truncate,
        max_length=max_length if truncate else None,
        padding=False,
        return_token_type_ids=True,
    )
    types = out.get("token_type_ids")
    return [
        Encoded(ids, types[i] if types is not None else None)
        for i, ids in enumerate(out["input_ids"])
    ]


def pad_batch(items: list[Encoded], pad_id: int, device: torch.device | str | None = None) -> PaddedBatch:
    """Right-pad encoded inputs to the longest one (on ``device``, if given)."""
    width = max(item.num_tokens for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    has_types = all(item.token_type_ids is not None for item in items)
    types = torch.zeros((len(items), width), dtype=torch.long) if has_types else None
    for row, item in enumerate(items):
        n = item.num_tokens
        ids[row, :n] = torch.tensor(item.input_ids)
        mask[row, :n] = 1
        if types is not None:
            types[row, :n] = torch.tensor(item.token_type_ids)
    batch = PaddedBatch(ids, mask, types)
    return batch if device is None else batch.to(device)


def length_sorted_batches(items: list[Encoded], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), longest first."""
    order = sorted(range(len(items)), key=lambda i: -items[i].num_tokens)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padded_batches(items: list[Encoded], pad_id: int, batch_size: int,
                   device: torch.device | str | None = None) -> list[tuple[list[int], PaddedBatch]]:
    """``items`` in length-sorted groups (see ``length_sorted_batches``): each group's indices
    into ``items`` and its padded batch."""
    return [(group, pad_batch([items[i] for i in group], pad_id, device))
            for group in length_sorted_batches(items, batch_size)]
