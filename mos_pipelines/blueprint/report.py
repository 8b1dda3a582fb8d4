"""A blueprint as text for the terminal: the goal, its arithmetic, the steps, what was left out."""

from __future__ import annotations

from mos_pipelines.blueprint.plan import Blueprint


def summary_lines(bp: Blueprint) -> list[str]:
    goal = bp.goal
    lines = [
        f"Blueprint {bp.blueprint_id} (revision {bp.revision}, {bp.status()}), data as of {bp.as_of or 'unknown'}",
        (
            f"Objective: {bp.objective.text!r} -> {bp.objective.metric} in {bp.objective.segment_text()}, "
            f"${bp.budget_usd:,.0f} over {bp.objective.horizon_months:g} months ({bp.objective.horizon_days} days)"
        ),
        f"Goal: {goal.get('statement', '(none)')}",
        "",
    ]
    lines += list(goal.get("arithmetic", []))
    lines += ["", "Steps:"]
    for s in bp.steps:
        exp = ""
        if s.expected is not None:
            band = (
                f" [{s.expected.lower:,.1f}–{s.expected.upper:,.1f}]"
                if s.expected.lower is not None and s.expected.upper is not None
                else ""
            )
            exp = f" -> {s.expected.value:,.1f}{band} {s.expected.metric}"
        after = f" (after {', '.join(s.depends_on)})" if s.depends_on else ""
        lines.append(f"  {s.id:<30} {s.type:<17} ${s.budget_usd:>12,.2f}{exp}{after}")
    for note in bp.planner.notes:
        lines.append(f"  note: {note}")
    return lines


# -- the plan DAG as a self-contained HTML page -------------------------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 280, 104, 90, 26, 24
STATUS_COLOURS = {
    "ok": "#d8f0dc",
    "stopped": "#fde9c8",
    "skipped": "#e8e8e8",
    "failed": "#f8d0d0",
    None: "#ffffff",
}


def layers(bp: Blueprint) -> dict[str, int]:
    """Each step's column: the length of the longest dependency path leading to it (file order breaks ties)."""
    by_id = {s.id: s for s in bp.steps}
    depth: dict[str, int] = {}

    def visit(sid: str, seen: tuple[str, ...] = ()) -> int:
        if sid in depth:
            return depth[sid]
        if sid in seen or sid not in by_id:  # a cycle or an unknown reference (validate reports them)
            return 0
        parents = [d for d in by_id[sid].depends_on if d in by_id]
        depth[sid] = 1 + max((visit(d, (*seen, sid)) for d in parents), default=-1)
        return depth[sid]

    for s in bp.steps:
        visit(s.id)
    return depth


def edges(bp: Blueprint) -> list[tuple[str, str]]:
    ids = {s.id for s in bp.steps}
    return [(d, s.id) for s in bp.steps for d in s.depends_on if d in ids]


def _expected(step) -> str:
    e = step.expected
    if e is None:
        return "no expected outcome"
    band = f" [{e.lower:,.1f}–{e.upper:,.1f}]" if e.lower is not None and e.upper is not None else ""
    return f"expects {e.value:,.1f}{band} {e.metric}"


def dag_html(bp: Blueprint, latest: list[dict] | None = None, progress_rows: list[dict] | None = None) -> str:
    """One HTML page, nothing fetched at view time: the steps as boxes in dependency columns (inline SVG), each with
    its type, budget, expected outcome and latest status and $ (``ops.step_runs``), the edges as arrows, and the
    same facts as a table."""
    from html import escape

    runs = {r["step_id"]: r for r in latest or []}
    depth = layers(bp)
    columns: dict[int, list[str]] = {}
    for s in bp.steps:
        columns.setdefault(depth[s.id], []).append(s.id)
    pos: dict[str, tuple[int, int]] = {}
    for col, ids in columns.items():
        for row, sid in enumerate(ids):
            pos[sid] = (PAD + col * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    width = PAD * 2 + (max(columns) + 1) * NODE_W + max(columns) * GAP_X
    height = PAD * 2 + max(len(v) for v in columns.values()) * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="plan DAG">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for a, b in edges(bp):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        mid = (sx + tx) / 2
        parts.append(
            f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" d="M {sx} {sy} C {mid} {sy}, {mid} '
            f'{ty}, {tx} {ty}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for s in bp.steps:
        x, y = pos[s.id]
        r = runs.get(s.id)
        status = r["status"] if r else None
        fill = STATUS_COLOURS.get(status, "#ffffff")
        latest_line = f"{status} · ${float(r['cost_usd'] or 0):,.2f} spent" if r else "not run yet"
        lines = [
            (f"{s.id}", "font-weight:bold"),
            (f"{s.type} · budget ${s.budget_usd:,.2f}", ""),
            (_expected(s), ""),
            (latest_line, "font-style:italic"),
        ]
        parts.append(f'<g class="step" data-step="{escape(s.id)}" data-status="{escape(status or "not run")}">')
        parts.append(
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" stroke="#333"/>'
            f"<title>{escape(s.title)}</title>"
        )
        for i, (text, style) in enumerate(lines):
            shown = text if len(text) <= 44 else text[:43] + "…"
            parts.append(
                f'<text x="{x + 10}" y="{y + 22 + i * 22}" font-family="sans-serif" font-size="12" '
                f'style="{style}">{escape(shown)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    rows = []
    for s in bp.steps:
        r = runs.get(s.id)
        cells = [
            s.id,
            s.type,
            s.title,
            ", ".join(s.depends_on) or "—",
            f"${s.budget_usd:,.2f}",
            _expected(s),
            r["status"] if r else "not run",
            f"${float(r['cost_usd'] or 0):,.2f}" if r else "",
            str(r["finished_at"])[:19] if r and r.get("finished_at") else "",
            (r.get("detail") or "") if r else "",
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    head = ["step", "type", "title", "after", "budget", "expected", "status", "cost", "finished", "detail"]
    progress_html = ""
    if progress_rows:
        keys = [
            "day",
            "actual",
            "planned",
            "planned_lower",
            "planned_upper",
            "spent_usd",
            "planned_spend_usd",
            "steps_done",
            "steps_total",
            "status",
        ]
        body = "".join(
            "<tr>"
            + "".join(f"<td>{escape(str(p.get(k))[:10] if k == 'day' else str(p.get(k)))}</td>" for k in keys)
            + "</tr>"
            for p in progress_rows
        )
        progress_html = (
            "<h2>Progress (blueprints.progress)</h2><table><tr>"
            + "".join(f"<th>{k}</th>" for k in keys)
            + f"</tr>{body}</table>"
        )
    title = f"Blueprint {bp.blueprint_id} revision {bp.revision}"
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;margin:24px}}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 6px;"
        "vertical-align:top;text-align:left}</style></head><body>"
        f"<h1>{escape(title)} ({escape(bp.status())})</h1>"
        f"<p>{escape(bp.objective.text)} — {escape(str(bp.goal.get('statement', '')))}</p>"
        f"<p>Budget ${bp.budget_usd:,.2f} over {bp.objective.horizon_days} days; {len(bp.steps)} steps, "
        f"{len(edges(bp))} dependencies. Colours: latest run's status in ops.step_runs.</p>"
        + "".join(parts)
        + "<h2>Steps</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
        + progress_html
        + "</body></html>\n"
    )
