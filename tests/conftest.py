"""Shared fixtures: tiny random classifiers of each family, and right-padded batches."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

torch.set_num_threads(1)  # tiny models gain nothing from threads; keeps runs beside others fair

VOCAB = 120
LENGTHS = [12, 5, 9, 2, 12, 7]  # mixed, with padding, one input of just [CLS] [SEP]


def tiny_classifier(family: str, num_layers: int = 3, seed: int = 0, num_labels: int = 3):
    """A random 3-layer, hidden-32 classifier of the given family, in eval mode."""
    torch.manual_seed(seed)
    common = dict(vocab_size=VOCAB, num_labels=num_labels, max_position_embeddings=64)
    if family == "bert":
        cfg = BertConfig(hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=4,
                         intermediate_size=64, **common)
        model = BertForSequenceClassification(cfg)
    elif family == "roberta":
        cfg = RobertaConfig(hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=4,
                            intermediate_size=64, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, **common)
        model = RobertaForSequenceClassification(cfg)
    elif family == "distilbert":
        cfg = DistilBertConfig(dim=32, n_layers=num_layers, n_heads=4, hidden_dim=64, **common)
        model = DistilBertForSequenceClassification(cfg)
    else:
        raise ValueError(family)
    return model.eval()


def padded_batch(pad_id: int = 0, lengths=LENGTHS, seed: int = 1):
    """Right-padded ids with a classifier token first and a separator last in each row."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(5, VOCAB, (n,), generator=g)
        ids[row, 0], ids[row, n - 1] = 3, 4
        mask[row, :n] = 1
    return ids, mask


@pytest.fixture(params=["bert", "roberta", "distilbert"])
def family(request) -> str:
    return request.param


@pytest.fixture
def hf_model(family):
    return tiny_classifier(family)


@pytest.fixture
def batch(hf_model):
    return padded_batch(pad_id=hf_model.config.pad_token_id or 0)


def tiny_tokenizer(tmp_path=None):
    """A WordPiece tokenizer over a small made-up vocabulary that fits the tiny models."""
    from transformers import BertTokenizer

    words = ["good", "bad", "film", "movie", "great", "awful", "plot", "the", "a", "is", "was",
             "not", "very", "fun", "dull", "and", "but", "it", "of", "to"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"w{i}" for i in range(VOCAB - len(vocab))]
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


@pytest.fixture
def tiny_artifact_dir(tmp_path):
    """A saved LTP artifact: tiny BERT, 2 labels, thresholds that prune."""
    make_artifact(tmp_path / "tiny-ltp", ["neg", "pos"])
    return tmp_path / "tiny-ltp"


@pytest.fixture
def tiny_base(tmp_path):
    """A tiny bert classifier folder with a tokenizer: a base encoder to fine-tune."""
    source = tmp_path / "tiny-base"
    tiny_classifier("bert", num_labels=2).save_pretrained(source)
    tiny_tokenizer().save_pretrained(source)
    return source


@pytest.fixture
def tiny_csv(tmp_path):
    """A small learnable labelled CSV in the user-data format: the label follows the
    sentiment words, the rest is filler."""
    import csv
    import random

    rng = random.Random(0)
    positive, negative = ["good", "great", "fun"], ["bad", "awful", "dull"]
    filler = ["film", "movie", "plot", "the", "a", "is", "was", "and", "it", "of", "to"]
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(80):
            label = "pos" if i % 2 else "neg"
            words = [rng.choice(filler) for _ in range(rng.randint(3, 25))]
            words.insert(rng.randrange(len(words) + 1), rng.choice(positive if i % 2 else negative))
            writer.writerow([" ".join(words), label])
    return path


def make_artifact(folder, labels, final_threshold=0.06, seed=0, head=None):
    """Save a tiny BERT LTP artifact (max length 32, thresholds that prune) into ``folder``;
    ``head``: an ``ltp.core.heads.Head`` (default single-label)."""
    from ltp.core.artifact import Artifact, ArtifactMeta, save_artifact
    from ltp.core.config import PruningConfig
    from ltp.core.heads import Head
    from ltp.core.model import LTPModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, num_labels=len(labels))
    pruning = PruningConfig(num_layers=3, normalizer=16, final_threshold=final_threshold)
    model = LTPModel(BertForSequenceClassification(cfg).eval(), pruning)
    meta = ArtifactMeta(labels, pruning, max_length=32, head=head or Head())
    save_artifact(Artifact(model, tiny_tokenizer(), meta), folder)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_artifact(folder / "tiny-ltp", ["neg", "pos"])
    make_artifact(folder / "tiny-topics", ["film", "food", "tech"], final_threshold=0.0, seed=1)
    return folder




def bar_steps(err: str, desc: str) -> list[tuple[int, int]]:
    """(count, total) of each state a tqdm bar named ``desc`` printed to ``err``."""
    import re

    return [(int(n), int(total)) for n, total in
            re.findall(rf"{re.escape(desc)}:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)", err)]


def assert_bar_reaches(err: str, desc: str, total: int) -> None:
    """The bar ``desc`` was sized ``total`` and counted up to it, never past it."""
    steps = bar_steps(err, desc)
    assert steps, f"no {desc!r} bar in {err!r}"
    assert {t for _, t in steps} == {total}, steps
    counts = [n for n, _ in steps]
    assert counts == sorted(counts) and counts[-1] == total, steps
