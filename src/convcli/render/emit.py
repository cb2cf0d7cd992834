"""Everything convcli prints goes through here: rich tables on a terminal, plain aligned text when
stdout is a pipe, JSON on request. Diagnostics go to stderr so stdout stays parseable.

rich is imported only when a table is drawn on a terminal: start-up time is a feature.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field


def is_terminal() -> bool:
    return sys.stdout.isatty()


def console(stderr: bool = False):
    """A rich console (honours NO_COLOR, as rich does)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, no_color="NO_COLOR" in os.environ or None)


def emit_json(obj) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def note(message: str) -> None:
    sys.stderr.write(f"{message}\n")


@dataclass
class Table:
    """Columns (header, "left" or "right"), rows of strings, a title and lines printed below."""

    columns: list[tuple[str, str]]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""
    footer: list[str] = field(default_factory=list)
    dim_rows: set[int] = field(default_factory=set)


def emit_table(table: Table) -> None:
    if is_terminal():
        _rich_table(table)
    else:
        _plain_table(table)


def _rich_table(table: Table) -> None:
    from rich.table import Table as RichTable

    out = console()
    rich = RichTable(title=table.title or None, title_justify="left", header_style="bold")
    for name, justify in table.columns:
        rich.add_column(name, justify=justify, no_wrap=justify == "right")
    for i, row in enumerate(table.rows):
        rich.add_row(*row, style="dim" if i in table.dim_rows else None)
    out.print(rich)
    for line in table.footer:
        out.print(line, markup=False)


def _plain_table(table: Table) -> None:
    if table.title:
        emit(table.title)
    widths = [max([len(name)] + [len(row[i]) for row in table.rows]) for i, (name, _) in enumerate(table.columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if j == "right" else c.ljust(w) for c, w, (_, j) in zip(cells, widths, table.columns)
        ).rstrip()

    emit(line([name for name, _ in table.columns]))
    for row in table.rows:
        emit(line(row))
    for text in table.footer:
        emit(text)


def count(n: int | None) -> str:
    """An exact count with thousands separators; '-' for none."""
    return "-" if n is None else f"{n:,}"


def human(n: int | float) -> str:
    """A count in K/M/G, three significant digits.

    >>> human(714188480), human(61706), human(950)
    ('714 M', '61.7 K', '950')
    """
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g}"
