"""How the ``ltp`` command prints a result: JSON for machines, tables for people.

A result is the dict a command returns. ``--json`` writes it unchanged (scripts parse it);
otherwise scalars become rows of one figure/value table, nested dicts of scalars become
dotted rows (``timing_spread.dense``), and a list of records (``rows`` of ``ltp sweep``) or a
dict of records (``per_class`` of ``ltp eval``) gets a table of its own.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

WIDTH_WHEN_PIPED = 200  # rich's 80 columns would wrap wide tables (runtimes, sweeps) written to a file


def show_progress() -> bool:
    """Whether progress bars are drawn: on stderr, when stderr is a terminal.

    JSON goes to stdout, so ``ltp bench --json > out.json`` still shows progress; set
    ``TQDM_DISABLE=1`` to hide it anyway.
    """
    return sys.stderr.isatty()


def emit(result: dict, as_json: bool, title: str | None = None, file: TextIO | None = None) -> None:
    """Write ``result`` to ``file`` (stdout): indented JSON, or tables."""
    out = file or sys.stdout
    if as_json:
        out.write(json.dumps(result, indent=2) + "\n")
        return
    if not result:
        return
    from rich.console import Console

    console = Console(file=out, width=None if out.isatty() else WIDTH_WHEN_PIPED)
    for table in tables(result, title):
        console.print(table)


def tables(result: dict, title: str | None = None) -> list:
    """The rich tables that show ``result``: figures first, then one per set of records."""
    from rich.table import Table

    figures = Table(title=title, title_justify="left", show_header=True)
    figures.add_column("figure", style="bold")
    figures.add_column("value", overflow="fold")
    extra = []
    for key, value in result.items():
        if _is_records(value):
            extra.append(_records_table(key, value))
        else:
            for name, shown in _flatten(key, value):
                figures.add_row(name, _text(shown))
    return ([figures] if figures.row_count else []) + extra


def format_value(value) -> str:
    """A figure as people read it: floats to 4 significant digits, lists space-separated."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return json.dumps(value) if value else "-"
    if isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list) for v in value):
            return " ".join(format_value(v) for v in value) or "-"
        return json.dumps(value)
    return str(value)


def _flatten(key: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict) and value:
        return [row for sub, v in value.items() for row in _flatten(f"{key}.{sub}", v)]
    return [(key, format_value(value))]


def _is_records(value) -> bool:
    """A non-empty list of dicts, or a dict whose values are all dicts of scalars."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, dict) for v in value)
    if isinstance(value, dict) and value:
        return all(isinstance(v, dict) and v and not any(isinstance(x, dict) for x in v.values())
                   for v in value.values())
    return False


def _records_table(key: str, value):
    from rich.table import Table

    if isinstance(value, dict):  # {name: {field: x}}: the name becomes the first column
        value = [{key: name, **fields} for name, fields in value.items()]
    columns = list(dict.fromkeys(k for record in value for k in record))
    table = Table(title=key, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for record in value:
        table.add_row(*(_text(format_value(record.get(c))) for c in columns))
    return table


def _text(value: str):
    from rich.text import Text

    return Text(value)  # plain text: a value like "[0.5]" is not rich markup
