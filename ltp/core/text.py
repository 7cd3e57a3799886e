"""Tokenising texts and padding token-id lists into model batches."""

from __future__ import annotations

import threading
import weakref
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


_FIXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {setting: copy}
_FIXED_LOCK = threading.Lock()


def fixed_tokenizer(tokenizer, max_length: int | None, direction: str = "right"):
    """A copy of a Hugging Face tokenizer's Rust tokenizer with its truncation fixed
    (``max_length`` tokens, cut from ``direction``; None: no truncation) and no padding,
    made once per setting and never changed after.

    Calling the Hugging Face tokenizer sets truncation on the one Rust tokenizer it shares
    between threads, so two inputs tokenised at once (one on a service's event loop, a long
    one in a thread) could each take the other's setting: a text sent with truncation off
    cut silently, or one sent with it on refused as too long.
    """
    key = (max_length, direction)
    copies = _FIXED.get(tokenizer)
    if copies is not None and key in copies:
        return copies[key]
    from tokenizers import Tokenizer

    with _FIXED_LOCK:
        copies = _FIXED.setdefault(tokenizer, {})
        if key not in copies:
            copy = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
            copy.no_padding()
            if max_length is None:
                copy.no_truncation()
            else:
                copy.enable_truncation(max_length, direction=direction)
            copies[key] = copy
        return copies[key]


def encode(
    tokenizer,
    texts: list[str],
    pairs: list[str] | None = None,
    max_length: int = 128,
    truncate: bool = True,
    direction: str = "right",
    release_gil: bool = False,
) -> list[Encoded]:
    """Tokenise texts (and optional second texts, None where an input has none) without
    padding, cutting from ``direction`` when truncating; thread-safe (``fixed_tokenizer``).

    Several inputs go in one batch call, which releases the GIL (and skips the offsets,
    which nothing here reads); a lone input takes the single call, which holds the GIL but
    starts no thread pool, unless ``release_gil`` (a caller on a worker thread, while the
    event loop runs Python beside it)."""
    rust = fixed_tokenizer(tokenizer, max_length if truncate else None, direction)
    inputs = texts if pairs is None else [t if p is None else (t, p)
                                          for t, p in zip(texts, pairs, strict=True)]
    if len(inputs) == 1 and not release_gil:
        one = inputs[0]
        encodings = [rust.encode(*one) if isinstance(one, tuple) else rust.encode(one)]
    else:
        encodings = rust.encode_batch_fast(inputs)
    return [Encoded(e.ids, e.type_ids) for e in encodings]


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
