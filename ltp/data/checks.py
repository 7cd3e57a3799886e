"""Checks of a data set before any model is trained: errors for what cannot train a model,
warnings for what is legal but suspicious, for each problem type."""

from __future__ import annotations

from collections import Counter, defaultdict

from ltp.core.config import MULTI_LABEL, REGRESSION
from ltp.data.datasets import SPLITS, DatasetSplits, Example
from ltp.data.files import DataError

MIN_PER_LABEL = 5  # fewer training examples (positives, multi-label) of a label: an error
RARE_PER_LABEL = 20  # fewer than this is a warning
SEVERE_IMBALANCE = 10.0  # largest / smallest class in train above this is a warning
MIN_REGRESSION_VALUES = 3  # fewer distinct training targets than this: an error


def _lines(examples: list[Example], limit: int = 5) -> str:
    where = [e.source for e in examples if e.source][:limit]
    more = ", ..." if len(examples) > limit else ""
    return f" ({', '.join(where)}{more})" if where else ""


def check_data(data: DatasetSplits) -> list[str]:
    """Errors (``DataError``) for data that cannot train a model, warnings for the rest.

    Every problem type: an empty dev or test split is an error; the same text in train and
    in dev/test, or under two labels (label sets, values), is a warning.

    * single-label. Errors: one class only; a label with fewer than ``MIN_PER_LABEL``
      training examples. Warnings: rare labels, severe imbalance, a label missing from dev
      or test.
    * multi-label. Errors: a label with fewer than ``MIN_PER_LABEL`` positive training rows;
      no training row with a label. Warnings: rows with no label (all-zero rows), rare
      labels, a label given on every row, a label with no positive in dev or test.
    * regression. Errors: fewer than ``MIN_REGRESSION_VALUES`` distinct training targets.
      Warnings: values in dev or test outside the training range.
    """
    check = {MULTI_LABEL: _multi_label, REGRESSION: _regression}.get(data.problem_type, _single_label)
    warnings = check(data)
    for split in ("dev", "test"):
        if not data.split(split):
            raise DataError(f"{data.name}: the {split} split is empty; provide more rows")
    return warnings + _overlaps(data)


def _single_label(data: DatasetSplits) -> list[str]:
    counts = Counter(e.label for e in data.train)
    shown = {data.labels[k]: counts.get(k, 0) for k in range(len(data.labels))}
    if len(counts) < 2:
        raise DataError(f"{data.name}: training data needs at least 2 labels (one class only): "
                        f"{shown}")
    few = {name: n for name, n in shown.items() if n < MIN_PER_LABEL}
    if few:
        raise DataError(f"{data.name}: label(s) with fewer than {MIN_PER_LABEL} training examples: "
                        f"{few} (all counts: {shown}); add examples or merge/remove the label")
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
    return warnings


def _positives(examples: list[Example], labels: list[str]) -> dict[str, int]:
    counts = Counter(k for e in examples for k in e.label)
    return {name: counts.get(k, 0) for k, name in enumerate(labels)}


def _multi_label(data: DatasetSplits) -> list[str]:
    shown = _positives(data.train, data.labels)
    few = {name: n for name, n in shown.items() if n < MIN_PER_LABEL}
    if few:
        raise DataError(f"{data.name}: label(s) with fewer than {MIN_PER_LABEL} positive training "
                        f"rows: {few} (all counts: {shown}); add examples or remove the label")
    empty = [e for e in data.train if not e.label]
    if len(empty) == len(data.train):
        raise DataError(f"{data.name}: no training row carries a label (every row is all-zero)")
    warnings = []
    if empty:
        warnings.append(f"{len(empty)} of {len(data.train)} training rows carry no label "
                        f"(all-zero rows){_lines(empty)}: the model learns to give none to such "
                        "texts; check that none lost its labels on the way")
    rare = {name: n for name, n in shown.items() if n < RARE_PER_LABEL}
    if rare:
        warnings.append(f"label(s) with fewer than {RARE_PER_LABEL} positive training rows: {rare}; "
                        "their F1 rests on very few examples")
    always = [name for name, n in shown.items() if n == len(data.train)]
    if always:
        warnings.append(f"label(s) {always} are given on every training row: nothing to learn")
    for split in ("dev", "test"):
        absent = [name for name, n in _positives(data.split(split), data.labels).items() if not n]
        if absent:
            warnings.append(f"label(s) {absent} have no positive in {split}: their F1 is not "
                            "measured there (micro-F1 still counts their false positives)")
    return warnings


def _regression(data: DatasetSplits) -> list[str]:
    values = [e.label for e in data.train]
    if len(set(values)) < MIN_REGRESSION_VALUES:
        raise DataError(f"{data.name}: regression needs at least {MIN_REGRESSION_VALUES} distinct "
                        f"training targets, found {sorted(set(values))[:5]}")
    low, high = min(values), max(values)
    warnings = []
    for split in ("dev", "test"):
        out = [e for e in data.split(split) if not low <= e.label <= high]
        if out:
            warnings.append(f"{len(out)} {split} target(s) lie outside the training range "
                            f"[{low:g}, {high:g}]{_lines(out)}")
    return warnings


def _overlaps(data: DatasetSplits) -> list[str]:
    warnings = []
    train_text = {(e.text, e.text_pair) for e in data.train}
    for split in ("dev", "test"):
        dup = [e for e in data.split(split) if (e.text, e.text_pair) in train_text]
        if dup:
            warnings.append(f"{len(dup)} {split} text(s) also occur in train{_lines(dup)}: "
                            f"{split} figures overstate accuracy on new texts")
    labels_of: dict[tuple, set] = defaultdict(set)
    for split in SPLITS:
        for e in data.split(split):
            labels_of[(e.text, e.text_pair)].add(e.label)
    conflicted = [e for split in SPLITS for e in data.split(split)
                  if len(labels_of[(e.text, e.text_pair)]) > 1]
    if conflicted:
        what = "value" if data.problem_type == REGRESSION else "label"
        warnings.append(f"{len({(e.text, e.text_pair) for e in conflicted})} text(s) carry more "
                        f"than one {what}{_lines(conflicted)}")
    return warnings


def length_warning(lengths: list[int], max_length: int, split: str = "train") -> str | None:
    """What share of texts the max length truncates (``lengths`` in tokens, untruncated)."""
    cut = sum(n > max_length for n in lengths)
    if not cut:
        return None
    return (f"{cut} of {len(lengths)} {split} texts ({100 * cut / len(lengths):.1f}%) are longer than "
            f"the max length {max_length} tokens and get truncated")
