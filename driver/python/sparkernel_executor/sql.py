"""The %%sql magic: a cell's Spark SQL, its first rows shown as a table (HTML and text)."""
from __future__ import annotations

import html
import re
from typing import Any, Callable

from .cell import Cell, first_line
from .errors import SparkSQLError

SQL_ROWS = 50


def _sql_message(exc: BaseException) -> str:
    """Spark's message up to the logical plan or the JVM stack, at most 15 lines."""
    lines: list[str] = []
    for line in str(exc).strip().splitlines():
        if line.startswith(("'", "+-", ":", "\tat ", "JVM stacktrace")):
            break
        lines.append(line)
    return "\n".join(lines[:15]).strip() or type(exc).__name__


def _table(columns: list[str], rows: list[Any], limit: int) -> dict:
    shown = rows[:limit]
    count = (f"more than {limit} rows (showing {limit})" if len(rows) > limit
             else f"{len(rows)} row{'' if len(rows) == 1 else 's'}")
    cells = [["null" if v is None else str(v) for v in row] for row in shown]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>"
                   for r in cells)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    text = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)),
            "-+-".join("-" * w for w in widths)]
    text += [" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return {"text/html": f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                         f"</table><p>{count}</p>",
            "text/plain": "\n".join(text + [count])}


class Sql:
    def __init__(self, wait: Callable[[], Any], cell: Cell) -> None:
        self._wait = wait  # the ready session (Session.wait)
        self._cell = cell

    def sql_magic(self, line: str, cell: str | None = None) -> None:
        """%%sql [-n ROWS]: runs the cell in Spark SQL and shows up to ROWS rows (50)."""
        m = re.match(r"\s*(?:-n\s+(\d+)\s*)?(.*)\Z", line, re.S)
        limit = int(m.group(1)) if m and m.group(1) else SQL_ROWS
        query = cell if cell is not None else (m.group(2) if m else line)
        session = self._wait()
        self._cell.fixed_title = True
        try:
            session.sparkContext.setJobDescription(f"%%sql: {first_line(query)}")
            self._cell.title = None
            df = session.sql(query)
            rows = df.take(limit + 1)
        except Exception as exc:
            raise SparkSQLError(_sql_message(exc)) from None
        finally:
            self._cell.fixed_title = False
        from IPython.display import display

        display(_table(df.columns, rows, limit), raw=True)
