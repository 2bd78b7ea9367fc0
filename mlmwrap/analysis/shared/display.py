"""Plain-text and HTML tables for the display of analysis results (comparisons, build-ups)."""

from __future__ import annotations

import html
import math
import textwrap

__all__ = ["format_number", "format_signed", "format_p", "wrap_note", "text_table", "html_table"]


def html_table(headers: list[str], rows: list[list[str]], caption: str, n_text: int) -> str:
    """An HTML table whose first ``n_text`` columns are text and the rest numbers."""

    def cell(tag: str, text: str, k: int) -> str:
        align = "left" if k < n_text else "right"
        style = f"text-align:{align};padding:0.1em 0.6em"
        return f"<{tag} style='{style}'>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", h, k) for k, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", c, k) for k, c in enumerate(row)) + "</tr>" for row in rows
    )
    return (
        "<table style='border-collapse:collapse;margin:0.6em 0'>"
        f"<caption style='text-align:left;font-weight:bold'>{html.escape(caption)}"
        f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def format_number(x: float, digits: int) -> str:
    return "" if not math.isfinite(x) else f"{x:.{digits}f}"


def format_signed(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:+.3f}"


def format_p(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return "<.001" if p < 0.001 else f"{p:.3f}"


def wrap_note(text: str) -> str:
    return textwrap.fill(text, width=92, subsequent_indent="  ", break_on_hyphens=False)


def text_table(headers: list[str], rows: list[list[str]], n_text: int) -> list[str]:
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if k < n_text else c.rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers)] + [line(r) for r in rows]
