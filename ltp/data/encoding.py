"""Examples of a data set tokenised for a model: the one way every command, stage and
benchmark turns a split into model inputs."""

from __future__ import annotations

from ltp.core.text import Encoded, encode
from ltp.data.datasets import Example, load_dataset


def encode_examples(tokenizer, examples: list[Example], max_length: int | None) -> list[Encoded]:
    """``examples`` (and their second texts, where they have one) tokenised, unpadded, cut
    to ``max_length`` tokens (None: not cut)."""
    return encode(tokenizer, [e.text for e in examples], [e.text_pair for e in examples],
                  max_length=max_length or 0, truncate=max_length is not None)


def token_lengths(tokenizer, examples: list[Example]) -> list[int]:
    """Untruncated token counts (special tokens included)."""
    return [e.num_tokens for e in encode_examples(tokenizer, examples, None)]


def encode_split(tokenizer, dataset: str, split: str, max_length: int
                 ) -> tuple[list[Encoded], list[int]]:
    """A data set's split tokenised (truncated to ``max_length``), and its labels."""
    examples = load_dataset(dataset).split(split)
    return encode_examples(tokenizer, examples, max_length), [e.label for e in examples]
