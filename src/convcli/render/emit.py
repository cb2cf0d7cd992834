"""Everything convcli prints goes through here: rich tables on a terminal, plain aligned text when
stdout is a pipe, JSON on request. Diagnostics go to stderr so stdout stays parseable.

rich is imported only when a table is drawn on a terminal: start-up time is a feature.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import NamedTuple


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


class Column(NamedTuple):
    """A table column. No cell is ever cut short. On a terminal too narrow for the table, headers
    break at spaces first; then columns with a ``drop`` rank are left out (1 first, then 2, ...).
    A ``wrap`` column (prose, lists of names or paths) breaks its cells into lines at spaces; the
    cells of the others (names, paths, layer words, shapes, numbers) stay on one line while the
    table can fit, and fold onto more lines when nothing else helps. Piped output is never
    narrowed."""

    header: str
    justify: str = "left"
    wrap: bool = False
    drop: int | None = None


@dataclass
class Table:
    """Columns (a `Column`, or a ``(header, "left" | "right")`` pair), rows of strings, a title
    and lines printed below."""

    columns: list[Column | tuple[str, str]]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""
    footer: list[str] = field(default_factory=list)
    dim_rows: set[int] = field(default_factory=set)

    @property
    def spec(self) -> list[Column]:
        """The columns, each as a `Column`."""
        return [Column(*c) for c in self.columns]


def emit_table(table: Table) -> None:
    if is_terminal():
        _rich_table(table)
    else:
        _plain_table(table)


def _rich_table(table: Table) -> None:
    out = console()
    for shown, widths in _layouts(table):
        if _frame(len(shown)) + sum(widths) <= out.width:
            rich = _rich(table, shown, widths, out.width)
            break
    else:
        rich = _rich(table, shown, None, out.width)  # nothing fits: every cell may fold, none is cut
    if table.title:  # above the table rather than in it: as wide as the terminal, not the table
        out.print(table.title, style="table.title", markup=False)
    out.print(rich)
    for line in table.footer:
        out.print(line, markup=False)
    left_out = [c.header for i, c in enumerate(table.spec) if i not in shown]
    if left_out:
        out.print(f"({', '.join(left_out)}: left out to fit {out.width} columns)", style="dim", markup=False)


def _frame(n_columns: int) -> int:
    """What a rich table adds to its cells' widths: a border and a space either side of each
    column, and the last border."""
    return 3 * n_columns + 1


def _layouts(table: Table):
    """(columns shown, their narrowest widths), in order of preference: every column with
    whole headers, then headers broken at spaces, then the same leaving out ``drop`` columns
    one by one. A cell that does not wrap is as wide as its longest line; a wrap column is as
    wide as its longest word."""
    from rich.cells import cell_len

    spec = table.spec

    def widths(shown, headers_whole):
        out = []
        for i in shown:
            column = spec[i]
            header = [column.header] if headers_whole else column.header.split()
            cells = [line for r in table.rows for line in r[i].split("\n")]
            if column.wrap:
                cells = [word for line in cells for word in line.split()]
            out.append(max(map(cell_len, header + cells), default=1))
        return out

    shown = list(range(len(table.columns)))
    yield shown, widths(shown, True)
    yield shown, widths(shown, False)
    for _, i in sorted((c.drop, i) for i, c in enumerate(spec) if c.drop is not None):
        shown = [j for j in shown if j != i]
        yield shown, widths(shown, True)
        yield shown, widths(shown, False)


def _rich(table: Table, shown: list[int], widths: list[int] | None, width: int):
    """The rich table of the ``shown`` columns at these narrowest ``widths`` (what is left of
    ``width`` widens the wrap columns), or with ``None`` as narrow as rich can fold it."""
    from rich.cells import cell_len
    from rich.table import Table as RichTable
    from rich.text import Text

    spec = table.spec
    columns = [spec[i] for i in shown]
    if widths is not None:
        spare = width - _frame(len(shown)) - sum(widths)
        wants = [
            max((cell_len(line) for r in table.rows for line in r[i].split("\n")), default=0) - w if c.wrap else 0
            for i, c, w in zip(shown, columns, widths)
        ]
        if sum(wants) > spare:
            wants = [want * spare // sum(wants) for want in wants]
        widths = [w + max(want, 0) for w, want in zip(widths, wants)]
    rich = RichTable(header_style="bold")
    for k, column in enumerate(columns):
        rich.add_column(
            Text(column.header, no_wrap=False),  # a header may break at spaces whatever its column
            justify="right" if column.justify == "right" else "left",
            no_wrap=widths is not None and not column.wrap,
            overflow="fold",
            width=widths[k] if widths is not None else None,
        )
    # Text, not str: a file name such as "[draft].png" is not rich markup.
    for k, row in enumerate(table.rows):
        rich.add_row(*(Text(row[i]) for i in shown), style="dim" if k in table.dim_rows else None)
    return rich


def _plain_table(table: Table) -> None:
    if table.title:
        emit(table.title)
    columns = table.spec
    widths = [max([len(c.header)] + [len(row[i]) for row in table.rows]) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if c.justify == "right" else cell.ljust(w) for cell, w, c in zip(cells, widths, columns)
        ).rstrip()

    emit(line([c.header for c in columns]))
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


def size(n: int | None) -> str:
    """Bytes in KiB/MiB/GiB, three significant digits; '-' for none.

    >>> size(16951456), size(2048), size(80)
    ('16.2 MiB', '2 KiB', '80 B')
    """
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"
