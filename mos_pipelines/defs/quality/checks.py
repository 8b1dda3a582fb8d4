"""The quality gates as blocking asset checks (logic in ``mos_pipelines.quality``).

Each check validates its asset, appends the result to ``ops.quality_results`` and reports the
observed value, the threshold and a few failing examples as metadata. Blocking: in the run where a
gate fails, nothing downstream of its asset materializes (the dbt project is split so that models
downstream of a gated model are a separate step, see ``defs/transform/assets.py``).
"""

import json
from collections.abc import Callable

import dagster as dg

from mos_pipelines.configuration import load_quality as load_config
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.quality import gates
from mos_pipelines.settings import WAREHOUSE_POOL

CONFIG = load_config()
GATE_KWARGS = gates.gates_for(CONFIG)

DESCRIPTIONS = {
    "missing_identifiers": (
        "Events received with neither anonymousId nor userId (quarantined by ingestion) / events received is "
        "below `missing_identifiers.max_rate`, over all events and on every event day with at least `min_rows` "
        "events; an event without a usable timestamp counts in the overall rate only."
    ),
    "event_volume": (
        "Events per day within ±`event_volume.max_change` of the same weekday a week earlier, unless the "
        "change is within `noise_z` sd of sampling noise or both days have fewer than `min_events`; expected "
        "days are exempt; passes with a note below `min_history_days` days."
    ),
    "duplicate_customers": (
        "Share of customers sharing an exact email or phone with another customer is below "
        "`duplicate_customers.max_rate` (judged from `min_customers` customers on)."
    ),
    "ad_spend": "Every row's spend is at least `ad_spend.min_spend`.",
}


def _markdown_rows(rows: list[dict]) -> str:
    if not rows:
        return "none"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines)


def to_check_result(result: gates.GateResult) -> dg.AssetCheckResult:
    metadata = {
        "observed": dg.MetadataValue.float(result.observed) if result.observed is not None else "n/a",
        "threshold": result.threshold,
        "failing_examples": dg.MetadataValue.md(_markdown_rows(result.examples)),
        "details": dg.MetadataValue.json(json.loads(result.details_json())),
    }
    if result.note:
        metadata["note"] = result.note
    return dg.AssetCheckResult(passed=result.passed, metadata=metadata)


def evaluate_gate(
    context: dg.AssetCheckExecutionContext,
    mos: MosHome,
    check_name: str,
    asset: dg.AssetKey,
    gate: Callable[..., gates.GateResult],
) -> dg.AssetCheckResult:
    """Run one gate, record it in ops.quality_results and turn it into the check's result (shared with the
    consent gates of the activation domain)."""
    with mos.connect() as con:
        try:
            result = gate(con)
        except gates.GateInputMissing as exc:
            result = gates.GateResult(
                check_name, asset.to_user_string(), False, None, "input table exists", note=str(exc)
            )
        gates.record_results(con, context.run.run_id, [result])
    if not result.passed:
        context.log.error(
            f"quality gate {asset.to_user_string()}:{check_name} failed: observed {result.observed}, "
            f"threshold {result.threshold}"
        )
    return to_check_result(result)


def build_gate_check(name: str) -> dg.AssetChecksDefinition:
    asset = dg.AssetKey(gates.GATE_ASSETS[name].split("/"))
    gate = getattr(gates, name)

    @dg.asset_check(asset=asset, name=name, blocking=True, pool=WAREHOUSE_POOL, description=DESCRIPTIONS[name])
    def _check(context: dg.AssetCheckExecutionContext, mos: MosHome) -> dg.AssetCheckResult:
        return evaluate_gate(context, mos, name, asset, lambda con: gate(con, **GATE_KWARGS[name]))

    return _check


quality_checks = [build_gate_check(name) for name in gates.GATE_ASSETS]
