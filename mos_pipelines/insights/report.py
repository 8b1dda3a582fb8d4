"""The marketer report of one insights run: a self-contained HTML file under ``$MOS_HOME/reports/``
(charts as embedded PNG), and the same top insights as markdown for the Dagster asset."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mos_pipelines.insights.candidate import Skip

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1080px;color:#1d2430}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dde3ea;padding-bottom:.3rem}
.meta{color:#5b6676} .card{border:1px solid #dde3ea;border-radius:8px;padding:1rem 1.2rem;margin:1.2rem 0}
.statement{font-size:1.1rem;font-weight:600} .cta{background:#eef6ee;border-left:4px solid #3a8a3a;padding:.5rem .8rem;margin:.6rem 0}
.stats{color:#3b4756;font-size:.9rem} table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #dde3ea;padding:.25rem .5rem;text-align:right} th{background:#f4f6f9}
td:first-child,th:first-child{text-align:left} pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem}
.tag{display:inline-block;background:#eef1f6;border-radius:4px;padding:0 .4rem;margin-right:.3rem;font-size:.8rem}
.flag{color:#a35a00}
"""


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def _table(rows: list[dict], limit: int = 40) -> str:
    if not rows:
        return "<p class='meta'>no rows</p>"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows[:limit])
    more = f"<p class='meta'>… {len(rows) - limit} more rows in the evidence</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def chart_png(insight: pd.Series) -> str | None:
    """A small chart for an insight, as base64 PNG (None when there is nothing to draw)."""
    image = chart_image(insight, "png")
    return None if image is None else base64.b64encode(image).decode()


def chart_svg(insight: pd.Series) -> str | None:
    """The same chart as inline SVG text (the web app's Insights Hub), None when there is nothing to draw."""
    image = chart_image(insight, "svg")
    if image is None:
        return None
    text = image.decode()
    return text[text.index("<svg") :]  # without the XML prolog and doctype, to sit inside an HTML page


def chart_image(insight: pd.Series, fmt: str) -> bytes | None:
    """The chart of an insight as ``fmt`` (png or svg) bytes; None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = insight["evidence"]
    summary = ev.get("summary") or []
    kind = insight["insight_type"]
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    try:
        if kind == "anomaly" and ev.get("rows"):
            metric = ev["subject"]["metric"]
            rows = pd.DataFrame(ev["rows"])
            rows["metric_time__day"] = pd.to_datetime(rows["metric_time__day"])
            ax.plot(rows["metric_time__day"], rows[metric], marker=".", color="#31598f")
            week_start = pd.Timestamp(summary[0]["week_start"])
            ax.axvspan(
                week_start - pd.Timedelta(hours=12),
                rows["metric_time__day"].max() + pd.Timedelta(hours=12),
                color="#f2c14e",
                alpha=0.25,
                label="week tested",
            )
            before = rows[rows["metric_time__day"] < week_start]
            usual = before.groupby(before["metric_time__day"].dt.weekday)[metric].mean()
            week = rows[rows["metric_time__day"] >= week_start]
            ax.plot(
                week["metric_time__day"],
                week["metric_time__day"].dt.weekday.map(usual),
                linestyle="--",
                color="#b23b3b",
                label="same weekdays before",
            )
            ax.set_ylabel(metric)
            ax.legend(loc="upper left", fontsize=8)
        elif kind == "budget_pacing" and ev.get("rows"):
            rows = pd.DataFrame(ev["rows"])
            rows["metric_time__day"] = pd.to_datetime(rows["metric_time__day"])
            ax.bar(rows["metric_time__day"], rows["spend"], color="#31598f", label="spend")
            ax.axhline(summary[0]["daily_budget_usd"], color="#b23b3b", linestyle="--", label="daily budget")
            ax.set_ylabel("USD per day")
            ax.legend(loc="upper left", fontsize=8)
        elif len(summary) == 2:
            metric = ev.get("subject", {}).get("metric") or "recall_at_10"
            labels = [str(s.get("arm") or s.get("fit")) for s in summary]
            values = [s.get(metric) or 0.0 for s in summary]
            ax.barh(labels[::-1], values[::-1], color=["#9aa7b8", "#31598f"])
            ax.set_xlabel(metric)
        else:
            return None
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buffer = io.BytesIO()
        # svg: text stays text (small), ids salted by a constant (same insight -> same bytes)
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mos"}):
            fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _card(rank: int, ins: pd.Series) -> str:
    ev = ins["evidence"]
    png = chart_png(ins)
    phrasing = ev.get("phrasing") or {}
    flag = (
        f"<span class='flag'>model text rejected, template used: {html.escape(str(phrasing.get('reason')))}</span>"
        if phrasing.get("flagged")
        else ""
    )
    stats = (
        f"effect {_fmt(ins['effect_size'])} (CI {_fmt(ins['ci_low'])} – {_fmt(ins['ci_high'])}), "
        f"p = {_fmt(ins['p_value'])}, q = {_fmt(ins['q_value'])}, impact ${_fmt(ins['impact_usd'])}"
    )
    query = ev.get("metric_query", {})
    return f"""
<div class="card" id="{ins["insight_id"]}">
  <div><span class="tag">#{rank}</span><span class="tag">{html.escape(ins["insight_type"])}</span>
  <span class="tag">objective: {html.escape(str(ins["objective"]))}</span></div>
  <p class="statement">{html.escape(ins["statement"])}</p>
  <div class="cta"><b>Do this:</b> {html.escape(ins["call_to_action"] or "")}</div>
  <p class="stats">{stats}<br>Hypothesis: {html.escape(ins["hypothesis"] or "")}<br>
  Written by {html.escape(str(phrasing.get("model", "template")))} (prompt {html.escape(str(phrasing.get("prompt_id", "")))}
  v{html.escape(str(phrasing.get("prompt_version", "")))}) {flag}</p>
  {f'<img alt="chart" src="data:image/png;base64,{png}">' if png else ""}
  <h4>Evidence: summary</h4>{_table(ev.get("summary") or [])}
  <details><summary>Metric query and the {len(ev.get("rows") or [])} rows it returned (insight {ins["insight_id"]})</summary>
  <pre>{html.escape(query.get("sql", ""))}</pre>
  {f"<pre>{html.escape(query['mf_command'])}</pre>" if query.get("mf_command") else ""}
  {_table(ev.get("rows") or [], limit=60)}
  <h4>Statistics</h4><pre>{html.escape(json.dumps(ev.get("statistics", {}), indent=1))}</pre></details>
</div>"""


def render_html(
    all_rows: pd.DataFrame, top: int, title: str, skips: list[Skip] | None = None, llm: dict[str, float] | None = None
) -> str:
    accepted = all_rows[all_rows["status"] == "accepted"]
    created_at = all_rows["created_at"].iloc[0] if not all_rows.empty else None
    counts = Counter(all_rows["status"])
    types = Counter(accepted["insight_type"])
    window: dict[str, Any] = {}
    if not all_rows.empty:
        window = next((e.get("window") for e in all_rows["evidence"] if e.get("window")), {}) or {}
    reasons = Counter(
        str((e.get("decision") or {}).get("reason") or "").split(":")[0]
        for e, s in zip(all_rows["evidence"], all_rows["status"])
        if s != "accepted"
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>Run {created_at} · data window {window.get('start', '?')} to {window.get('end', '?')} · "
        f"{len(all_rows)} candidates tested, {counts.get('accepted', 0)} insights "
        f"(significant after Benjamini–Hochberg and material), "
        + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()) if s != "accepted")
        + "</p>",
    ]
    if llm:
        parts.append(
            f"<p class='meta'>Text: {int(llm.get('calls', 0))} model calls, "
            f"{int(llm.get('tokens_in', 0)):,} tokens in / {int(llm.get('tokens_out', 0)):,} out, "
            f"${llm.get('cost_usd', 0.0):.4f}, {int(llm.get('rejected', 0))} texts rejected by the grounding "
            "check (ledger: ops.llm_calls)</p>"
        )
    parts.append("<h2>Top insights</h2>")
    if accepted.empty:
        parts.append("<p>No candidate was both significant and material in this run.</p>")
    for rank, (_, ins) in enumerate(accepted.head(top).iterrows(), start=1):
        parts.append(_card(rank, ins))
    parts.append("<h2>All insights of this run</h2>")
    parts.append(
        _table(
            [
                {
                    "type": r.insight_type,
                    "statement": r.statement,
                    "q": r.q_value,
                    "impact $": r.impact_usd,
                    "objective": r.objective,
                }
                for r in accepted.itertuples()
            ],
            limit=500,
        )
    )
    parts.append(f"<p class='meta'>By type: {', '.join(f'{k} {v}' for k, v in sorted(types.items()))}</p>")
    parts.append("<h2>Rejected candidates</h2>")
    parts.append(_table([{"reason": k or "—", "candidates": v} for k, v in reasons.most_common()]))
    if skips:
        parts.append("<h2>Not computed in this run</h2><ul>")
        parts += [f"<li><b>{html.escape(s.family)}</b>: {html.escape(s.reason)}</li>" for s in skips]
        parts.append("</ul>")
    parts.append(
        "<p class='meta'>Every insight is a row of insights.insights; its evidence column holds the metric "
        "query and the rows above. Ask the same of MetricFlow with the mf command shown.</p></body></html>"
    )
    return "\n".join(parts)


def write_report(
    all_rows: pd.DataFrame,
    reports_dir: Path,
    top: int,
    skips: list[Skip] | None = None,
    llm: dict[str, float] | None = None,
) -> Path:
    """Write the run's report and refresh ``insights_latest.html``; returns the run's file."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    created_at = pd.Timestamp(all_rows["created_at"].iloc[0]) if not all_rows.empty else pd.Timestamp.now(tz="UTC")
    stamp = created_at.strftime("%Y%m%dT%H%M%SZ")
    content = render_html(all_rows, top, f"Marketing insights — {created_at:%Y-%m-%d %H:%M} UTC", skips, llm)
    path = reports_dir / f"insights_{stamp}.html"
    path.write_text(content, encoding="utf-8")
    (reports_dir / "insights_latest.html").write_text(content, encoding="utf-8")
    return path


def top_markdown(accepted: pd.DataFrame, top: int) -> str:
    if accepted.empty:
        return "No insight in this run (no candidate was significant and material)."
    lines = ["| # | type | insight | do this | q | impact $ |", "|---|---|---|---|---|---|"]
    for rank, row in enumerate(accepted.head(top).itertuples(), start=1):
        statement = str(row.statement).replace("|", "/")
        action = str(row.call_to_action or "").replace("|", "/")
        impact = "" if pd.isna(row.impact_usd) else f"{row.impact_usd:,.0f}"
        lines.append(f"| {rank} | {row.insight_type} | {statement} | {action} | {row.q_value:.2g} | {impact} |")
    return "\n".join(lines)
