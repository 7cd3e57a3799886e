"""The user's own labelled files: CSV, TSV, JSONL or JSON records read into rows.

A row is (text, second text or None, label, "file:line"). The label is the label column's
text (a class name, or a number for regression), or, for multi-label data, a tuple of label
names: from a label column with several labels split by a delimiter (``Columns.delimiter``,
``"toxic|insult"``), from a JSON list in that column, or from one 0/1 column per label
(``Columns.labels``). Nothing is dropped: missing columns, empty texts or labels and
malformed rows are errors that list the columns found or the lines at fault.
"""

from __future__ import annotations

import csv
import difflib
import json
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
TRUE_CELLS = ("1", "1.0", "true", "yes")
FALSE_CELLS = ("0", "0.0", "false", "no", "")


class DataError(ValueError):
    """A data set cannot be read: unknown name, missing file or column, empty, bad labels."""


@dataclass(frozen=True)
class Columns:
    """Where the texts and labels are: the recipe's ``columns:``, ``ltp build --data``'s flags."""

    text: str = "text"
    label: str = "label"
    pair: str | None = None
    # multi-label, one 0/1 column per label (the label column is then not read)
    labels: tuple[str, ...] | None = None
    # multi-label, several labels in the label column split by this ("|", ",", ";")
    delimiter: str | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
            if len(self.labels) < 2:
                raise DataError("label columns: name two or more 0/1 columns")
        if self.labels and self.delimiter:
            raise DataError("give label columns or a label delimiter, not both")
        if self.delimiter == "":
            raise DataError("the label delimiter must not be empty")

    @property
    def multi_label(self) -> bool:
        """The columns themselves say the data is multi-label."""
        return bool(self.labels or self.delimiter)

    def wanted(self) -> list[str]:
        label = list(self.labels) if self.labels else [self.label]
        return [c for c in (self.text, *label, self.pair) if c]


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
    option = ("pass --text-column / --label-column / --label-columns / --pair-column "
              "(recipe: columns:)")
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


def _multi_label(record: dict, columns: Columns) -> tuple[tuple[str, ...], str | None]:
    """A record's labels (multi-label), and what is wrong with them, if anything."""
    if columns.labels:
        given, problems = [], []
        for name in columns.labels:
            cell = _cell(record.get(name)).lower()
            if cell in TRUE_CELLS:
                given.append(name)
            elif cell not in FALSE_CELLS:
                problems.append(f"column {name!r}: {cell[:20]!r} is not 0 or 1")
        return tuple(given), "; ".join(problems) or None
    value = record.get(columns.label)
    if isinstance(value, list):  # JSON records may hold the labels as a list
        parts = [_cell(v) for v in value]
    else:
        parts = _cell(value).split(columns.delimiter) if columns.delimiter else [_cell(value)]
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip())), None


def read_table(path: Path, columns: Columns, multi_label: bool = False
               ) -> list[tuple[str, str | None, str | tuple[str, ...], str]]:
    """Read a CSV, TSV or JSONL file into (text, pair, label, "file:line") rows; the label is
    a tuple of label names when ``multi_label`` (or the columns say so).

    Nothing is dropped: missing columns, empty texts or labels and malformed rows are
    errors that list the columns found or the lines at fault. A multi-label row may carry
    no label at all (an all-zero row).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    found, records, bad = _read_records(path)
    missing = [c for c in columns.wanted() if c not in found]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {found}; "
                        + _column_hint(missing, found, columns, records))
    multi_label = multi_label or columns.multi_label
    rows = []
    for line, record in records:
        text = _cell(record.get(columns.text))
        pair = _cell(record.get(columns.pair)) if columns.pair else None
        label, problem = (_multi_label(record, columns) if multi_label
                          else (_cell(record.get(columns.label)), None))
        problems = [f"empty {what}" for what, value in
                    (("text", text), ("label", label), ("pair text", pair)) if value == ""]
        problems += [problem] if problem else []
        if problems:
            bad.append((line, " and ".join(problems)))
            continue
        rows.append((text, pair, label, f"{path.name}:{line}"))
    if bad:
        raise DataError(_bad_rows(path, bad))
    return rows
