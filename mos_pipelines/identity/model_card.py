"""The fitted CRM matching model as a warehouse table, and its model card (a match-weights chart).

``int_crm_contacts__matched`` writes ``intermediate.int_crm_contacts__match_model`` next to itself: one row per
comparison level (m, u, match weight), plus a ``prior`` row, with the run's settings (as JSON, exactly as
used after the population check), what was left out, and the model-wide figures repeated on every row.
The Dagster asset shows it as metadata and ``mos identity explain`` re-scores a pair with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pandas as pd

from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.comparisons import Comparison, Level
from mos_pipelines.identity.matching import FittedModel, MatchSettings

MODEL_TABLE = "int_crm_contacts__match_model"
CARD_FILE = "identity_model_card.json"  # under $MOS_HOME/reports: the card of the last run, for Dagster metadata
COLUMNS = {
    "comparison": "string",
    "comparison_position": "Int64",
    "level": "Int64",
    "level_label": "string",
    "level_sql": "string",
    "tf_column": "string",
    "m_probability": "float64",
    "u_probability": "float64",
    "match_weight": "float64",
    "lambda": "float64",
    "records": "Int64",
    "candidate_pairs": "Int64",
    "em_iterations": "Int64",
    "em_converged": "boolean",
    "skip_reason": "string",
    "settings_json": "string",
    "cluster_json": "string",
    "shares_json": "string",
    "left_out_json": "string",
    "sessions_json": "string",
}


def settings_to_json(settings: MatchSettings) -> str:
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def settings_from_json(text: str) -> MatchSettings:
    data = json.loads(text)
    comparisons = tuple(
        Comparison(
            name=c["name"],
            columns=tuple(c["columns"]),
            null_sql=c["null_sql"],
            levels=tuple(
                Level(lvl["label"], lvl["sql"], lvl["tf_column"], tuple(lvl["columns"])) for lvl in c["levels"]
            ),
            similarities=tuple(tuple(s) for s in c["similarities"]),
        )
        for c in data.pop("comparisons")
    )
    for key in ("blocking_rules", "training_rules", "derived_columns", "tf_min_records"):
        data[key] = tuple(tuple(x) for x in data.get(key, ()))
    data["rule_block_sizes"] = tuple((tuple(rule), cap) for rule, cap in data.get("rule_block_sizes", ()))
    data["rule_unless_both_have"] = tuple(
        (tuple(rule), (tuple(columns), int(over))) for rule, (columns, over) in data.get("rule_unless_both_have", ())
    )
    return MatchSettings(comparisons=comparisons, **data)


def model_table(run: Any) -> pd.DataFrame:
    """Rows for ``MODEL_TABLE`` from a ``crm_matching.CrmMatchRun`` (one ``skipped`` row when nothing was fitted)."""
    resolved, model = run.resolved, run.model
    common = {
        "records": run.records,
        "skip_reason": run.skip_reason,
        "cluster_json": json.dumps(dataclasses.asdict(run.cluster or ClusterSettings())),
        "settings_json": settings_to_json(resolved.settings) if resolved else None,
        "shares_json": json.dumps({k: round(v, 4) for k, v in sorted(resolved.shares.items())}) if resolved else None,
        "left_out_json": json.dumps(list(resolved.dropped)) if resolved else "[]",
    }
    rows: list[dict] = []
    if model is None:
        rows.append({**common, "comparison": "(none)"})
    else:
        common.update(
            {
                "lambda": model.lam,
                "candidate_pairs": model.candidate_pairs,
                "em_iterations": model.iterations,
                "em_converged": model.converged,
                "sessions_json": json.dumps(model.sessions, default=str),
            }
        )
        rows.append(
            {
                **common,
                "comparison": "prior",
                "comparison_position": 0,
                "level": None,
                "level_label": "two random records match",
                "match_weight": math.log2(model.lam / (1 - model.lam)),
            }
        )
        for position, c in enumerate(resolved.settings.comparisons, start=1):
            for gamma in range(c.top, -1, -1):
                level = c.level_of(gamma) if gamma else None
                rows.append(
                    {
                        **common,
                        "comparison": c.name,
                        "comparison_position": position,
                        "level": gamma,
                        "level_label": level.label if level else "else (disagree)",
                        "level_sql": level.sql if level else None,
                        "tf_column": level.tf_column if level else None,
                        "m_probability": model.m[c.name][gamma],
                        "u_probability": model.u[c.name][gamma],
                        "match_weight": model.weight(c.name, gamma),
                    }
                )
    frame = pd.DataFrame(rows)
    for column, dtype in COLUMNS.items():
        if column not in frame:
            frame[column] = None
        frame[column] = frame[column].astype(dtype)
    return frame[list(COLUMNS)]


def fitted_model(frame: pd.DataFrame) -> tuple[MatchSettings, FittedModel, ClusterSettings]:
    """The settings, parameters and clustering thresholds of a ``MODEL_TABLE`` read back."""
    first = frame.iloc[0]
    if pd.notna(first["skip_reason"]) or pd.isna(first["settings_json"]):
        raise ValueError(f"the last run fitted no model: {first['skip_reason']}")
    settings = settings_from_json(first["settings_json"])
    levels = frame[frame["comparison"] != "prior"]
    m: dict[str, dict[int, float]] = {}
    u: dict[str, dict[int, float]] = {}
    for row in levels.itertuples():
        m.setdefault(row.comparison, {})[int(row.level)] = float(row.m_probability)
        u.setdefault(row.comparison, {})[int(row.level)] = float(row.u_probability)
    model = FittedModel(
        lam=float(first["lambda"]),
        m=m,
        u=u,
        iterations=int(first["em_iterations"]),
        converged=bool(first["em_converged"]),
        candidate_pairs=int(first["candidate_pairs"]),
    )
    return settings, model, ClusterSettings(**json.loads(first["cluster_json"]))


# ---------------------------------------------------------------------------------------------- rendering

BAR_WIDTH = 20  # characters for the largest absolute weight


def weights_chart(frame: pd.DataFrame) -> str:
    """A match-weights chart as text (Splink's chart, in characters): one line per level, bars to the left
    for evidence against a match, to the right for evidence for it, scaled to the largest weight."""
    rows = frame[frame["comparison"] != "(none)"].sort_values(["comparison_position", "level"], ascending=[True, False])
    if rows.empty:
        return ""
    scale = max(abs(w) for w in rows["match_weight"] if pd.notna(w)) or 1.0
    label_width = max(len(f"{r.comparison}: {r.level_label}") for r in rows.itertuples())
    lines = []
    for r in rows.itertuples():
        weight = float(r.match_weight)
        n = max(1, round(abs(weight) / scale * BAR_WIDTH)) if abs(weight) >= 0.05 else 0
        left = ("█" * n if weight < 0 else "").rjust(BAR_WIDTH)
        right = ("█" * n if weight > 0 else "").ljust(BAR_WIDTH)
        lines.append(f"{f'{r.comparison}: {r.level_label}'.ljust(label_width)} {left}|{right} {weight:+6.2f}")
    return "\n".join(lines)


def markdown(frame: pd.DataFrame) -> str:
    """The model card: the figures, the weights table and chart, and what the population check left out."""
    first = frame.iloc[0]
    if pd.notna(first["skip_reason"]):
        return f"No model was fitted: {first['skip_reason']} ({first['records']} records)."
    lines = [
        f"**{int(first['records']):,} records, {int(first['candidate_pairs']):,} candidate pairs**; prior "
        f"λ = {float(first['lambda']):.3g} (weight {math.log2(float(first['lambda']) / (1 - float(first['lambda']))):+.2f}); "
        f"EM {'converged' if first['em_converged'] else 'did NOT converge'} ({int(first['em_iterations'])} iterations at most).",
        "",
        "Match weight = log2(m / u): m = P(level | match), u = P(level | non-match), estimated by EM on this run's "
        "records. Term-frequency levels replace u by the agreed value's frequency when scoring.",
        "",
        "| comparison | level | m | u | weight |",
        "|---|---|---|---|---|",
    ]
    for r in frame[frame["comparison"] != "prior"].itertuples():
        tf = " (term frequency)" if isinstance(r.tf_column, str) else ""
        lines.append(
            f"| {r.comparison} | {r.level_label}{tf} | {r.m_probability:.4f} | {r.u_probability:.6f} | "
            f"{r.match_weight:+.2f} |"
        )
    lines += ["", "```", weights_chart(frame), "```"]
    names = [c for c in dict.fromkeys(frame["comparison"]) if c != "prior"]
    trained = set()
    for session in json.loads(first["sessions_json"] or "[]"):
        if session.get("iterations", 0) > 0:
            trained |= set(names) - set(session.get("held_out", [])) - set(session.get("no_evidence", []))
    untrained = [c for c in names if c not in trained]
    if untrained:
        lines += [
            "",
            f"Not estimated by EM (every training rule with pairs fixes it; its m is the prior 0.9 for "
            f"the top level): {', '.join(untrained)}. Add a training rule that does not read its columns.",
        ]
    settings = settings_from_json(first["settings_json"])
    derived = dict(settings.derived_columns)
    caps, unless = dict(settings.rule_block_sizes), dict(settings.rule_unless_both_have)
    lines += ["", "Blocking rules (a pair is compared when it agrees on every key of one of them):"]
    for rule in settings.blocking_rules:
        text = " + ".join(derived[k] if k.startswith("_key_") else k for k in rule)
        options = [f"blocks of at most {caps.get(rule, settings.max_block_size)} records"] * bool(
            caps.get(rule, settings.max_block_size)
        )
        if rule in unless:
            columns, over = unless[rule]
            where = f"in blocks of more than {over} records, " if over else ""
            options.append(f"{where}only records that do not both have {' or '.join(columns)}")
        lines.append(f"- {text}" + (f" ({'; '.join(options)})" if options else ""))
    left_out = json.loads(first["left_out_json"] or "[]")
    if left_out:
        lines += ["", "Left out (columns filled on too few records):", *[f"- {item}" for item in left_out]]
    return "\n".join(lines)


def card(frame: pd.DataFrame) -> dict[str, Any]:
    """The model card as JSON-able figures and markdown (what the Dagster asset shows as metadata)."""
    first = frame.iloc[0]
    out: dict[str, Any] = {"markdown": markdown(frame), "records": int(first["records"])}
    if isinstance(first["skip_reason"], str):
        out["skipped"] = first["skip_reason"]
        return out
    out.update(
        {
            "prior_lambda": float(first["lambda"]),
            "candidate_pairs": int(first["candidate_pairs"]),
            "em_converged": bool(first["em_converged"]),
            "comparisons": int(frame.loc[frame["comparison"] != "prior", "comparison"].nunique()),
        }
    )
    return out
