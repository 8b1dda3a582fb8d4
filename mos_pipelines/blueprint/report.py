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
