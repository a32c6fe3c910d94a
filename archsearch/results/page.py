"""A self-contained HTML page: plotly.js inlined once, figures as JSON, a sortable table, no network.

The page records its own JavaScript errors in ``<body data-js-errors="[...]">`` so a headless browser
(the tests use Chromium's ``--dump-dom``) can tell that it loaded cleanly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.results.store import atomic_write_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px; color: #1d2433; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #dde; }
p.note { color: #556; max-width: 70em; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid > .plot { flex: 1 1 420px; min-width: 380px; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e3e6ee; padding: 4px 10px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; background: #f3f5fa; position: sticky; top: 0; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
table.facts th { background: none; cursor: default; }
ol.blocks { margin: 2px 0 0 0; padding-left: 1.6em; } .arch-head { color: #445; }
"""

# Registered before anything else runs, so an error in plotly.js or a figure is recorded too.
ERROR_HOOK = """
window.__errors = [];
function __noteError(message) {
  window.__errors.push(String(message));
  document.body.dataset.jsErrors = JSON.stringify(window.__errors);
}
window.addEventListener("error", function (e) { __noteError(e.message || "error"); });
window.addEventListener("unhandledrejection", function (e) { __noteError("unhandled rejection: " + e.reason); });
"""

DRAW_SCRIPT = """
document.querySelectorAll("div.plot[data-figure]").forEach(function (div) {
  var fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
  Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
});
"""

# Click a header to sort by it; cells carry their raw value in data-sort so numbers sort as numbers.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = table.querySelectorAll("th");
  headers.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var ascending = th.dataset.order !== "asc";
      headers.forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = ascending ? "asc" : "desc";
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[col];
        return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
      };
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? c : -c;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figure_div(div_id: str, figure: Any) -> str:
    """A div for ``figure`` and the figure's JSON beside it; :data:`DRAW_SCRIPT` draws it at the end.

    Drawing waits for the whole page so that every plot measures its final width (a plot drawn while
    its grid row is still filling would size itself to the whole row and be cropped later).
    """
    import plotly.io as pio

    data = pio.to_json(figure, validate=False).replace("</", "<\\/")
    return (f'<div class="plot" id="{div_id}" data-figure="{div_id}-data"></div>\n'
            f'<script type="application/json" id="{div_id}-data">{data}</script>')


def facts_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def sortable_table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[tuple[str, Any, bool]]]) -> str:
    """A table sorted by clicking its headers.

    Args:
        table_id: the element id.
        headers: column titles (plain text).
        rows: cells as ``(html, sort_value, numeric)``; ``html`` is inserted as is, so escape it first.
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        cells = "".join(
            f'<td class="{"num" if numeric else ""}" data-sort="{html.escape(str(sort))}">{content}</td>'
            for content, sort, numeric in row)
        lines.append(f"<tr>{cells}</tr>")
    return (f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(lines)}</tbody></table>")


def page(title: str, body: str) -> str:
    """The whole document: error hook first, then plotly.js, then the content and the sort script."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body data-js-errors=\"[]\">\n<script>{ERROR_HOOK}</script>\n"
        f"<script>{plotly_js()}</script>\n{body}\n<script>{DRAW_SCRIPT}{SORT_SCRIPT}</script>\n</body></html>\n"
    )


def write_page(path: Path, text: str) -> Path:
    """Write a page atomically; a path that cannot be written is the user's to fix, so one-line error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text, durable=False)
    except OSError as exc:
        raise ArchsearchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
