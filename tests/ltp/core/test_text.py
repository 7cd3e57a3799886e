"""Tokenising: the same ids as the Hugging Face call, and safe from several threads at once."""

import threading

import pytest

from ltp.core.text import encode
from tests.conftest import tiny_tokenizer

TEXTS = ["a good film", "bad plot and a dull film " * 20, "fun", "the movie was great fun " * 5]
PAIRS = [None, "a good film", "bad " * 40, None]


@pytest.mark.parametrize("truncate", [True, False])
@pytest.mark.parametrize("pairs", [None, PAIRS, [p or "x" for p in PAIRS]],
                         ids=["singles", "mixed", "pairs"])
def test_encode_gives_the_hugging_face_ids(truncate, pairs):
    tokenizer = tiny_tokenizer()
    ours = encode(tokenizer, TEXTS, pairs, max_length=24, truncate=truncate)
    for i, text in enumerate(TEXTS):
        pair = pairs[i] if pairs else None
        ref = tokenizer(text, pair, truncation=truncate, max_length=24 if truncate else None,
                        return_token_type_ids=True)
        assert ours[i].input_ids == ref["input_ids"]
        assert ours[i].token_type_ids == ref["token_type_ids"]
    assert (max(e.num_tokens for e in ours) <= 24) == truncate


@pytest.mark.parametrize("count", [1, 4])
def test_the_call_that_releases_the_gil_gives_the_same_ids(count):
    tokenizer = tiny_tokenizer()
    for pairs in (None, PAIRS[:count]):
        held = encode(tokenizer, TEXTS[:count], pairs, max_length=24)
        released = encode(tokenizer, TEXTS[:count], pairs, max_length=24, release_gil=True)
        assert released == held and len(held) == count


def test_left_truncation_keeps_the_end():
    tokenizer = tiny_tokenizer()
    full = encode(tokenizer, [TEXTS[1]], truncate=False)[0].input_ids
    left = encode(tokenizer, [TEXTS[1]], max_length=10, direction="left")[0].input_ids
    assert len(left) == 10 and left[1:-1] == full[-9:-1]  # [CLS], the last 8 tokens, [SEP]


def test_threads_tokenising_at_once_keep_their_own_truncation():
    """One shared tokenizer, threads alternating truncation on and off: each input must
    come out as its own call asked (the Hugging Face call mutates shared state)."""
    tokenizer = tiny_tokenizer()
    long_text = TEXTS[1] * 3
    full = len(encode(tokenizer, [long_text], truncate=False)[0].input_ids)
    wrong: list[str] = []

    def work(truncate: bool) -> None:
        for _ in range(300):
            n = encode(tokenizer, [long_text], max_length=16, truncate=truncate)[0].num_tokens
            if n != (16 if truncate else full):
                wrong.append(f"truncate={truncate}: {n} tokens")

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, wrong[:5]
