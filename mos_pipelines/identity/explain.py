"""Why two CRM contact records did or did not match: ``mos identity explain A B``.

Re-scores the pair with the model the last run fitted (``intermediate.int_crm_contacts__match_model``: its
settings after the population check, m, u and λ) on the records as they are in the warehouse
(``int_crm_contacts__normalised`` with the blocked values removed, term frequencies over all of them), so
the figures are the ones the run used as long as the records have not changed since. Reports each
comparison's level, m, u and weight (with the term-frequency adjustment), the prior, the total weight
and probability, the blocking rules that made the pair a candidate (or why none did), and the match
cluster and customer each record ended in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from mos_pipelines.identity.crm_matching import match_frame
from mos_pipelines.identity.matching import (
    FittedModel,
    MatchSettings,
    add_derived_columns,
    add_term_frequencies,
    block_size_cap,
    compare_pairs,
    register_records,
    score,
    unless_both_have,
)
from mos_pipelines.identity.model_card import MODEL_TABLE, fitted_model


class ExplainError(ValueError):
    """The pair cannot be explained (unknown record, no model yet); the message says what to do."""


@dataclass(frozen=True)
class ComparisonStep:
    comparison: str
    level: int  # -1: a value missing on one side (no evidence), 0: disagree
    label: str
    m: float | None
    u: float | None
    weight: float  # log2(m / u), 0 for no evidence
    tf_adjustment: float  # added for agreement on a value rarer (+) or commoner (−) than average
    values: tuple[str, str]  # the columns it read, as "column=value; ..." for each record


@dataclass(frozen=True)
class Explanation:
    record_a: str
    record_b: str
    prior_weight: float
    steps: list[ComparisonStep]
    total_weight: float
    probability: float
    candidate_rules: list[str]  # blocking rules both records agree on (with a block small enough)
    rule_notes: list[str]  # why the other rules did not pair them
    cluster_a: str | None
    cluster_b: str | None
    customer_a: str | None = None
    customer_b: str | None = None
    link_threshold: float = 0.8
    notes: list[str] = field(default_factory=list)

    @property
    def same_cluster(self) -> bool:
        return self.cluster_a is not None and self.cluster_a == self.cluster_b


def _read(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> pd.DataFrame:
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        raise ExplainError(f"cannot read {what} ({str(exc).splitlines()[0]}); run `mos run` first") from exc


def _rule_text(rule: tuple[str, ...], settings: MatchSettings) -> str:
    derived = dict(settings.derived_columns)
    return " + ".join(derived[k] if k.startswith("_key_") else k for k in rule)


def explain(warehouse: duckdb.DuckDBPyConnection, record_a: str, record_b: str) -> Explanation:
    """Explain the pair of contact record keys (``generic:123``, ``hubspot:45``) from the warehouse."""
    if record_a == record_b:
        raise ExplainError(f"{record_a!r} twice: give two different contact record keys")
    model_rows = _read(warehouse, f"select * from intermediate.{MODEL_TABLE}", f"intermediate.{MODEL_TABLE}")
    if model_rows.empty:
        raise ExplainError(f"intermediate.{MODEL_TABLE} is empty; run `mos run` first")
    try:
        settings, model, cluster = fitted_model(model_rows)
    except ValueError as exc:
        raise ExplainError(str(exc)) from exc
    records = _read(
        warehouse,
        "select * from intermediate.int_crm_contacts__normalised",
        "intermediate.int_crm_contacts__normalised",
    )
    missing = [k for k in (record_a, record_b) if k not in set(records["contact_record_key"])]
    if missing:
        examples = ", ".join(records["contact_record_key"].head(3))
        raise ExplainError(
            f"no CRM contact record {', '.join(map(repr, missing))} in "
            f"intermediate.int_crm_contacts__normalised (keys look like {examples})"
        )
    blocked = _read(
        warehouse,
        "select identifier_type, value from staging.identity_blocked_values",
        "staging.identity_blocked_values",
    )
    clusters = _read(
        warehouse,
        "select contact_record_key, match_cluster_key from intermediate.int_crm_contacts__matched",
        "intermediate.int_crm_contacts__matched",
    ).set_index("contact_record_key")["match_cluster_key"]
    try:
        customers = (
            warehouse.execute(
                "select node_key, customer_id from marts.dim_customer_identity_map where node_key in (?, ?)",
                [f"crm:{record_a}", f"crm:{record_b}"],
            )
            .df()
            .set_index("node_key")["customer_id"]
        )
    except duckdb.Error:
        customers = pd.Series(dtype=str)

    con = duckdb.connect()
    try:
        register_records(con, match_frame(records, blocked), "contact_record_key")
        add_derived_columns(con, settings.derived_columns)
        add_term_frequencies(con, settings)
        ids = dict(
            con.execute(
                "select contact_record_key, _rid from _mx_records where contact_record_key in (?, ?)",
                [record_a, record_b],
            ).fetchall()
        )
        a, b = ids[record_a], ids[record_b]
        rules, notes = _blocking(con, settings, a, b)
        con.register("_mx_pair", pd.DataFrame({"id_l": [min(a, b)], "id_r": [max(a, b)]}))
        compare_pairs(con, settings, "_mx_pair", "_mx_pair_compared")
        compared = con.execute("select * from _mx_pair_compared").df().iloc[0]
        score(con, settings, model, "_mx_pair_compared", "_mx_pair_scored")
        scored = con.execute("select match_weight, match_probability from _mx_pair_scored").fetchall()[0]
        steps = [_step(con, c, i, compared, model, settings, a, b) for i, c in enumerate(settings.comparisons)]
    finally:
        con.close()
    return Explanation(
        record_a=record_a,
        record_b=record_b,
        prior_weight=math.log2(model.lam / (1 - model.lam)),
        steps=steps,
        total_weight=float(scored[0]),
        probability=float(scored[1]),
        candidate_rules=rules,
        rule_notes=notes,
        cluster_a=clusters.get(record_a),
        cluster_b=clusters.get(record_b),
        customer_a=customers.get(f"crm:{record_a}"),
        customer_b=customers.get(f"crm:{record_b}"),
        link_threshold=cluster.link_threshold,
    )


def _blocking(con: duckdb.DuckDBPyConnection, settings: MatchSettings, a: int, b: int) -> tuple[list[str], list[str]]:
    """Rules both records agree on (and whose block is within the size cap), and notes on the others."""
    rules, notes = [], []
    for rule in settings.blocking_rules:
        keys = [e.format(t="_mx_records") if "{t}" in e else e for e in rule]
        values = con.execute(
            f"select _rid, {', '.join(keys)} from _mx_records where _rid in (?, ?) order by _rid",
            [min(a, b), max(a, b)],
        ).fetchall()
        left, right = values[0][1:], values[1][1:]
        text = _rule_text(rule, settings)
        unless, over = unless_both_have(settings, rule)
        both_have = []
        if unless:
            present = con.execute(
                f"select {', '.join(f'{c} is not null' for c in unless)} from _mx_records where _rid in (?, ?)",
                [a, b],
            ).fetchall()
            both_have = [c for k, c in enumerate(unless) if present[0][k] and present[1][k]]
        if any(v is None for v in left + right):
            notes.append(f"{text}: a key is empty on one record")
        elif left != right:
            notes.append(f"{text}: keys differ")
        else:
            where = " and ".join(f"{k} = ?" for k in keys)
            size = con.execute(f"select count(*) from _mx_records where {where}", list(left)).fetchall()[0][0]
            cap = block_size_cap(settings, rule)
            if cap and size > cap:
                notes.append(f"{text}: same key, but {size} records share it (more than its max_block_size {cap})")
            elif both_have and size > over:
                block_note = f" in a block of {size} records (more than {over})" if over else ""
                notes.append(
                    f"{text}: same key, but both records have {', '.join(both_have)}{block_note} (unless_both_have)"
                )
            else:
                rules.append(f"{text} (block of {size} records)")
    return rules, notes


def _step(
    con: duckdb.DuckDBPyConnection,
    c,
    i: int,
    compared: pd.Series,
    model: FittedModel,
    settings: MatchSettings,
    a: int,
    b: int,
) -> ComparisonStep:
    level = int(compared[f"g_{i}"])
    columns = ", ".join(f'"{col}"' for col in c.columns)
    rows = {
        rid: row
        for rid, *row in con.execute(f"select _rid, {columns} from _mx_records where _rid in (?, ?)", [a, b]).fetchall()
    }
    shown = ["; ".join(f"{col}={v}" for col, v in zip(c.columns, rows[rid])) for rid in (a, b)]
    values = (shown[0], shown[1])
    if level < 0:
        return ComparisonStep(c.name, level, "no evidence (a value is missing)", None, None, 0.0, 0.0, values)
    m, u = model.m[c.name][level], model.u[c.name][level]
    tf = compared.get(f"tf_{i}")
    adjustment = 0.0
    if tf is not None and not pd.isna(tf):
        adjustment = math.log2(u / max(float(tf), settings.min_tf))
    label = c.level_of(level).label if level else "else (disagree)"
    return ComparisonStep(c.name, level, label, m, u, math.log2(m / u), adjustment, values)


def to_text(e: Explanation) -> str:
    """The explanation as plain text (what the CLI prints)."""
    lines = [f"{e.record_a}  vs  {e.record_b}", ""]
    lines.append(f"{'comparison':<14} {'level':<34} {'m':>8} {'u':>10} {'weight':>8}  values")
    lines.append(f"{'prior':<14} {'two random records match':<34} {'':>8} {'':>10} {e.prior_weight:>+8.2f}")
    for s in e.steps:
        m = f"{s.m:.4f}" if s.m is not None else "–"
        u = f"{s.u:.6f}" if s.u is not None else "–"
        weight = s.weight + s.tf_adjustment
        tf = f" (incl. term frequency {s.tf_adjustment:+.2f})" if s.tf_adjustment else ""
        lines.append(
            f"{s.comparison:<14} {s.label[:34]:<34} {m:>8} {u:>10} {weight:>+8.2f}  {s.values[0]}  |  {s.values[1]}{tf}"
        )
    lines.append(f"{'total':<14} {'':<34} {'':>8} {'':>10} {e.total_weight:>+8.2f}  probability {e.probability:.4f}")
    lines.append("")
    if e.candidate_rules:
        lines.append("Candidate pair: blocking rules " + "; ".join(e.candidate_rules) + ".")
    else:
        lines.append(
            "Never a candidate pair: no blocking rule paired them (the pair was scored only if both "
            "records fell in one candidate group, see below)."
        )
    for note in e.rule_notes:
        lines.append(f"  - {note}")
    lines.append("")
    verdict = "the same match cluster" if e.same_cluster else "different match clusters"
    lines.append(
        f"Ended in {verdict}: {e.record_a} → {e.cluster_a}, {e.record_b} → {e.cluster_b}"
        + (f" (customers {e.customer_a}, {e.customer_b})" if e.customer_a or e.customer_b else "")
        + "."
    )
    if not e.same_cluster and e.probability >= e.link_threshold:
        lines.append(
            "The pair alone is likely enough to link, but the clustering kept the records apart: the "
            "mean probability between their groups was below the merge threshold."
        )
    elif e.same_cluster and e.probability < e.link_threshold:
        lines.append(
            "The pair alone is not likely enough to link; the records are together through other "
            "records of the cluster."
        )
    return "\n".join(lines)
