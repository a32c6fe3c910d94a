"""A self-contained HTML page: plotly.js inlined once, figures as JSON, a sortable table, no network.

plotly.js is 4.8 MB of text; inlined as it is, it made every page about 5 MB. It is inlined compressed
instead (zlib, 1.5 MB), its bytes written 7 bits per character so that the page stays valid UTF-8 text
(see :func:`pack_bytes`), and unpacked by the browser's own ``DecompressionStream`` before the figures
are drawn. The figures' JSON travels the same way, with every hover text stored once however many
figures show it (:func:`page_figures` reads them back). A page of a 200-trial run stays well under 2 MB
and still needs no network.

The page records its own JavaScript errors in ``<body data-js-errors="[...]">`` so a headless browser
(the tests use Chromium's ``--dump-dom``) can tell that it loaded cleanly; ``data-drawn`` says how many
figures were drawn.
"""

from __future__ import annotations

import functools
import html
import json
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
.cards { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.card { border: 1px solid #dde; border-radius: 6px; padding: 8px 10px; background: #fbfcfe; }
.card h3 { font-size: 0.95em; margin: 0 0 4px 0; } .card .values { color: #445; font-size: 0.85em; }
#unpack-failed { display: none; color: #a00; }
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

# Unpack plotly.js (7 bits per character, then zlib), run it, then draw every figure.
DRAW_SCRIPT = """
function __unpack(text, n) {
  var out = new Uint8Array(n), acc = 0, bits = 0, j = 0;
  for (var i = 0; i < text.length && j < n; i++) {
    acc = ((acc << 7) | (text.charCodeAt(i) & 127)) & 0x7fff; bits += 7;
    if (bits >= 8) { bits -= 8; out[j++] = (acc >> bits) & 255; }
  }
  return out;
}
function __inflate(id) {
  var packed = document.getElementById(id);
  var bytes = __unpack(packed.textContent, Number(packed.dataset.bytes));
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"))).text();
}
function __draw(payload) {
  payload.shared.forEach(function (at) {
    var trace = payload.figures[at[0]].data[at[1]];
    trace.text = trace.text.map(function (i) { return payload.strings[i]; });
  });
  var drawn = 0;
  document.querySelectorAll("div.plot[data-figure]").forEach(function (div) {
    var fig = payload.figures[div.dataset.figure];
    Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
    drawn += 1;
  });
  document.body.dataset.drawn = String(drawn);
}
(function () {
  if (typeof DecompressionStream === "undefined") {
    document.getElementById("unpack-failed").style.display = "block";
    return;
  }
  Promise.all([__inflate("plotly-packed"), __inflate("figures-packed")]).then(function (parts) {
    var script = document.createElement("script");
    script.textContent = parts[0];
    document.head.appendChild(script);
    __draw(JSON.parse(parts[1]));
  }).catch(function (e) { __noteError("cannot unpack the page: " + e); });
})();
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


# 7-bit values the HTML parser would change inside a <script> element: NUL (replaced), CR (turned into
# LF) and "<" (could close the element). They are written as U+0100 + value; the reader masks 7 bits.
_UNSAFE = (0, 13, 60)


def pack_bytes(data: bytes) -> str:
    """Bytes as text of 7 bits per character, safe inside a raw-text HTML element.

    Base64 would cost a third more; seven bits per character cost an eighth, and every character below
    128 is one byte of UTF-8. :data:`DRAW_SCRIPT`'s ``__unpack`` is the inverse.
    """
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    bits = np.concatenate([bits, np.zeros(-len(bits) % 7, dtype=np.uint8)])
    values = bits.reshape(-1, 7) @ (1 << np.arange(6, -1, -1))
    codes = values.astype(np.uint32)
    codes[np.isin(values, _UNSAFE)] += 0x100
    return codes.astype("<u4").tobytes().decode("utf-32-le")


@functools.lru_cache(maxsize=1)
def packed_plotly_js() -> tuple[str, int, str]:
    """plotly.js compressed and packed (computed once per process), its byte length and its version."""
    from plotly.offline import get_plotlyjs_version

    data = zlib.compress(plotly_js().encode("utf-8"), 9)
    return pack_bytes(data), len(data), get_plotlyjs_version()


def figure_div(div_id: str, figure: Any) -> str:
    """A div for ``figure`` and the figure's JSON beside it; :func:`page` packs the JSON of all figures
    into one compressed block and :data:`DRAW_SCRIPT` draws them at the end.

    Drawing waits for the whole page so that every plot measures its final width (a plot drawn while
    its grid row is still filling would size itself to the whole row and be cropped later).
    """
    import plotly.io as pio

    data = pio.to_json(figure, validate=False).replace("</", "<\\/")
    return (f'<div class="plot" id="{div_id}" data-figure="{div_id}"></div>\n'
            f'<script type="application/json" id="{div_id}-data">{data}</script>')


_FIGURE_JSON = re.compile(r'<script type="application/json" id="([\w-]+)-data">(.*?)</script>\n?', re.S)


def pack_figures(body: str) -> tuple[str, str, int]:
    """Take the figures' JSON out of ``body``; return the body without it, and the figures packed.

    Hover texts (an architecture sketch per trial, shown by several figures) are stored once in
    ``strings``; ``shared`` lists the traces whose ``text`` holds indices into it.
    """
    figures: dict[str, Any] = {}
    for div_id, data in _FIGURE_JSON.findall(body):
        figures[div_id] = json.loads(data.replace("<\\/", "</"))
    strings: list[str] = []
    index: dict[str, int] = {}
    shared = []
    for div_id, figure in figures.items():
        for k, trace in enumerate(figure.get("data", [])):
            text = trace.get("text")
            if isinstance(text, list) and text and all(isinstance(t, str) for t in text):
                codes = []
                for t in text:
                    if t not in index:
                        index[t] = len(strings)
                        strings.append(t)
                    codes.append(index[t])
                trace["text"] = codes
                shared.append([div_id, k])
    payload = json.dumps({"figures": figures, "strings": strings, "shared": shared}, separators=(",", ":"))
    data = zlib.compress(payload.encode("utf-8"), 9)
    return _FIGURE_JSON.sub("", body), pack_bytes(data), len(data)


def unpack_text(packed: str, n_bytes: int) -> bytes:
    """The inverse of :func:`pack_bytes` (what the page's ``__unpack`` does in the browser)."""
    values = np.frombuffer(packed.encode("utf-32-le"), dtype="<u4") & 127
    bits = ((values[:, None] >> np.arange(6, -1, -1)) & 1).astype(np.uint8).ravel()
    return np.packbits(bits[:n_bytes * 8]).tobytes()


def page_figures(text: str) -> dict[str, Any]:
    """The figures of a page written by :func:`page`, by div id, with their hover texts in place."""
    match = re.search(r'<script type="application/octet-stream" id="figures-packed" data-bytes="(\d+)">(.*?)</script>',
                      text, re.S)
    if match is None:
        return {}
    payload = json.loads(zlib.decompress(unpack_text(match.group(2), int(match.group(1)))))
    for div_id, k in payload["shared"]:
        trace = payload["figures"][div_id]["data"][k]
        trace["text"] = [payload["strings"][i] for i in trace["text"]]
    return payload["figures"]


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
    """The whole document: error hook first, then the content, packed plotly.js, and the scripts."""
    packed, n_bytes, version = packed_plotly_js()
    body, figures, figure_bytes = pack_figures(body)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body data-js-errors=\"[]\">\n<script>{ERROR_HOOK}</script>\n"
        '<p id="unpack-failed">This browser cannot unpack the plots (it lacks DecompressionStream: Chrome 80, '
        "Firefox 113, Safari 16.4 or newer have it). The tables below are complete.</p>\n"
        f"{body}\n<!-- plotly.js v{version} (MIT licence), zlib-compressed, 7 bits per character -->\n"
        f'<script type="application/octet-stream" id="plotly-packed" data-bytes="{n_bytes}">{packed}</script>\n'
        f'<script type="application/octet-stream" id="figures-packed" data-bytes="{figure_bytes}">{figures}</script>\n'
        f"<script>{DRAW_SCRIPT}{SORT_SCRIPT}</script>\n</body></html>\n"
    )


def write_page(path: Path, text: str) -> Path:
    """Write a page atomically; a path that cannot be written is the user's to fix, so one-line error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text, durable=False)
    except OSError as exc:
        raise ArchsearchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
