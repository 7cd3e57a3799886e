"""Data sets: deterministic disjoint splits, user files, clear errors."""

import json

import pytest

from ltp.data import DataError, load_dataset


@pytest.mark.parametrize("name,sizes", [
    ("rt-polarity", {"train": 10201, "dev": 1275, "test": 1276}),
    ("amazon-food", {"train": 3600, "dev": 400, "test": 1000}),
])
def test_builtin_splits_are_deterministic_and_disjoint(name, sizes):
    first, again = load_dataset(name), load_dataset(name)
    assert first.sizes() == sizes
    assert first.train == again.train and first.test == again.test
    texts = {s: {e.text for e in first.split(s)} for s in ("train", "dev", "test")}
    if name == "rt-polarity":  # one shuffled pool: no text may sit in two splits
        assert not texts["train"] & texts["dev"]
        assert not texts["train"] & texts["test"]
        assert not texts["dev"] & texts["test"]
    assert len(first.labels) == 2
    # stratified: label shares in train and test within 2 points
    share = {s: sum(e.label for e in first.split(s)) / len(first.split(s)) for s in ("train", "test")}
    if name == "rt-polarity":
        assert abs(share["train"] - share["test"]) < 0.02


def test_user_csv_is_split_deterministically(tiny_csv):
    data = load_dataset(str(tiny_csv))
    assert data.labels == ["neg", "pos"]
    assert sum(data.sizes().values()) == 80
    assert data.sizes() == load_dataset(str(tiny_csv)).sizes()


def test_user_folder_with_pairs(tmp_path):
    rows = [{"q": f"question {i}", "a": f"answer {i}", "y": "yes" if i % 2 else "no"}
            for i in range(20)]
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from ltp.data import Columns

    data = load_dataset(str(tmp_path), Columns(text="q", label="y", pair="a"))
    assert data.train[0].text_pair is not None
    assert data.sizes()["test"] == 20 and data.sizes()["dev"] == 2


@pytest.mark.parametrize("content,message", [
    ("", "cannot be read|no rows"),
    ("text,label\n", "no rows"),
    ("words,label\nhello,pos\nbye,neg\n", "missing column"),
    ("text,label\nhello,pos\nbye,pos\n", "at least 2 labels"),
    ("text,label\n ,pos\nbye,neg\n", "empty text"),
])
def test_bad_user_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(str(path))


def test_unknown_test_label_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
    (tmp_path / "test.csv").write_text("text,label\ne,z\n")
    with pytest.raises(DataError, match="'z' is not one of the training labels"):
        load_dataset(str(tmp_path))


def test_unknown_name_and_bad_suffix(tmp_path):
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("no-such-set")
    bad = tmp_path / "data.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match="expected a .csv"):
        load_dataset(str(bad))
