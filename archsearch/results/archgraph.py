"""A genome drawn as its graph: an inline SVG of blocks, wiring and merges, top to bottom.

Rows are the nodes' depth from the input (longest path), so the branches of a parallel stage sit side
by side and their merge below them; a residual block carries a bypass line with a ``+``. Inline SVG
needs no script and no library, and stays a few kilobytes per architecture.
"""

from __future__ import annotations

import html
import json
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 178, 38, 22, 20, 12
MERGE_R = 15
KIND_COLOURS = {  # block families, so a front of mixed architectures reads at a glance
    "mlp": "#dbe9f6", "glu": "#dbe9f6", "attention": "#fde2c8", "linear_attention": "#fde2c8",
    "token_mixer": "#fde2c8", "moe_topk": "#e4dcf1", "moe_soft": "#e4dcf1",
}
KAN_COLOUR, OTHER_COLOUR, IO_COLOUR = "#d8f0dc", "#eeeeee", "#f6f6f9"
MAX_LABEL = 27


def _colour(kind: str) -> str:
    return KAN_COLOUR if kind.startswith("kan") else KIND_COLOURS.get(kind, OTHER_COLOUR)


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def _layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of every node from the nodes without inputs."""
    inputs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        inputs.setdefault(b, []).append(a)
        inputs.setdefault(a, [])
    depth: dict[str, int] = {}

    def visit(node: str, seen: frozenset[str]) -> int:
        if node not in depth:
            parents = [p for p in inputs.get(node, []) if p not in seen]
            depth[node] = 1 + max((visit(p, seen | {node}) for p in parents), default=-1)
        return depth[node]

    for node in inputs:
        visit(node, frozenset())
    return depth


def architecture_svg(genome_json: str, data_spec: dict[str, Any] | None = None) -> str:
    """The genome as an ``<svg>`` element; any other architecture (a callable space's) as JSON text."""
    data = json.loads(genome_json)
    if not isinstance(data, dict) or "nodes" not in data:
        return f"<code>{html.escape(json.dumps(data, sort_keys=True))}</code>"
    specs = {node["id"]: node["spec"] for node in data["nodes"]}
    edges = [(a, b) for a, b in data.get("edges", [])]
    names = ["input", *specs, "output"]
    depth = _layers(names, edges)
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(depth.get(name, 0), []).append(name)
    width = max(len(r) for r in rows.values()) * (BOX_W + GAP_X) - GAP_X + 2 * MARGIN + 24
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * MARGIN
    centre: dict[str, tuple[float, float]] = {}
    for level, members in sorted(rows.items()):
        span = len(members) * (BOX_W + GAP_X) - GAP_X
        for k, name in enumerate(sorted(members, key=lambda n: (n.endswith("p"), n))):
            x = (width - 24) / 2 - span / 2 + k * (BOX_W + GAP_X) + BOX_W / 2
            centre[name] = (x, MARGIN + level * (BOX_H + GAP_Y) + BOX_H / 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="arch" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif" font-size="11">',
             '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6" markerHeight="6" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#778"/></marker></defs>']
    for a, b in edges:
        if a in centre and b in centre:
            (x1, y1), (x2, y2) = centre[a], centre[b]
            y1 += _half_height(a, specs)
            y2 -= _half_height(b, specs) + 2
            parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#778" '
                         'stroke-width="1.2" marker-end="url(#arrow)"/>')
    for name in names:
        if name in centre:
            parts.append(_node(name, specs.get(name), centre[name], data.get("meta", {}), data_spec))
    parts.append("</svg>")
    return "".join(parts)


def _half_height(name: str, specs: dict[str, Any]) -> float:
    spec = specs.get(name)
    return MERGE_R if spec is not None and spec["kind"] == "identity" else BOX_H / 2


def _node(name: str, spec: dict[str, Any] | None, at: tuple[float, float], meta: dict[str, Any],
          data_spec: dict[str, Any] | None) -> str:
    x, y = at
    if spec is not None and spec["kind"] == "identity":
        sign = "+" if spec.get("merge") == "sum" else "‖"
        title = f"{name}: merge by {spec.get('merge')}"
        return (f'<g><title>{html.escape(title)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="{MERGE_R}" '
                f'fill="#fff" stroke="#556" stroke-width="1.2"/><text x="{x:.1f}" y="{y + 4:.1f}" '
                f'text-anchor="middle" font-size="13">{sign}</text><text x="{x + MERGE_R + 4:.1f}" y="{y + 4:.1f}" '
                f'fill="#556">{html.escape(str(spec.get("merge")))}</text></g>')
    if spec is None:
        line1, line2, fill = _io_lines(name, meta, data_spec)
        title = f"{line1} · {line2}"
    else:
        params = " ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
        line1 = f"{spec['kind']} {params}".strip()
        norm = spec.get("norm_placement", "none")
        activation = spec.get("activation", "")
        line2 = " · ".join(p for p in (activation if activation != "identity" else "",
                                       "no norm" if norm == "none" else f"{spec.get('norm')} {norm}") if p)
        fill = _colour(spec["kind"])
        title = f"{name}: {line1} · {line2}" + (" · residual" if spec.get("residual") else "")
    left, top = x - BOX_W / 2, y - BOX_H / 2
    out = [f'<g><title>{html.escape(title)}</title>',
           f'<rect x="{left:.1f}" y="{top:.1f}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" '
           'stroke="#99a" stroke-width="1"/>',
           f'<text x="{x:.1f}" y="{top + 15:.1f}" text-anchor="middle" font-weight="600">{html.escape(_short(line1))}</text>',
           f'<text x="{x:.1f}" y="{top + 30:.1f}" text-anchor="middle" fill="#445">{html.escape(_short(line2))}</text>']
    if spec is not None and spec.get("residual"):
        right = x + BOX_W / 2
        out.append(f'<path d="M{right - 20:.1f},{top - 6:.1f} C{right + 16:.1f},{top - 6:.1f} {right + 16:.1f},'
                   f'{top + BOX_H + 6:.1f} {right - 20:.1f},{top + BOX_H + 6:.1f}" fill="none" stroke="#c55" '
                   'stroke-width="1.2" stroke-dasharray="3,2"/>'
                   f'<text x="{right + 12:.1f}" y="{y + 4:.1f}" fill="#c55" font-size="12">+</text>')
    out.append("</g>")
    return "".join(out)


def _io_lines(name: str, meta: dict[str, Any], data_spec: dict[str, Any] | None) -> tuple[str, str, str]:
    spec = data_spec or {}
    if name == "input":
        kind = spec.get("input_kind")
        what = (f"{spec.get('n_features')} features" if kind == "vector" else
                f"{spec.get('seq_len')} tokens" if kind == "tokens" else
                f"length {spec.get('seq_len')}" if kind == "sequence" else "input")
        tokens = " → tokens" if meta.get("tokenize") == "features" else ""
        return f"{what}{tokens}", f"input, width {meta.get('width', '?')}", IO_COLOUR
    outputs = spec.get("n_outputs")
    return (f"head: {outputs} output{'s' if outputs != 1 else ''}" if outputs else "head",
            f"final norm {meta.get('final_norm') or 'none'}", IO_COLOUR)
