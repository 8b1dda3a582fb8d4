"""Insights against the simulator's truth: do planted effects appear (with the right direction), and how
many reported insights are about null slices?

Read from ``truth/planted_effects.json`` (effects, null slices, volume changes), ``manifest.json``,
``expected_daily.csv``, ``arm_rates.csv`` and ``email_sends.parquet``:

- ``channel_conversion`` (channel c converts m× as often in region r) is found by an accepted
  ``region_comparison`` of c in r against the other regions, on conversion rate, higher when m > 1 and
  lower when m < 1.
- ``variant_lift`` (variant v of campaign k, region r, click or conversion) is found by an accepted
  ``experiment_winner`` on that metric in r naming v the better arm (lift > 0) or the worse (lift < 0).
  Open-rate lifts are not measurable (the variant mart has no opens) and are left out of the recall.
- a ``volume_changes`` entry is found by an accepted overall ``sessions`` anomaly in the same direction,
  when the week the detector tests overlaps the change (otherwise it is not measurable).
- an insight is about a null slice when it compares what the slice declares equal: two channels of a
  ``channels_equal`` slice on conversion rate in its region, or variants of a ``variants_equal``
  campaign in its region.
- every accepted insight is scored against the world's generating truth (``truth/expected_daily.csv``, the
  expected value of each metric per day × channel × region; ``arm_rates.csv``): supported, unsupported or not
  checkable, with the reason (``mos_pipelines/simulation/insight_truth.py``, beside the simulator: nothing in
  production imports it).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from mos_pipelines.settings import DBT_PROJECT_DIR
from mos_pipelines.simulation.insight_truth import NOT_CHECKABLE, SUPPORTED, UNSUPPORTED, InsightScore, score_insights

MARKETING_MARTS = (
    "+fct_channel_performance +fct_variant_performance +fct_channel_segment_performance +fct_experiment_holdout"
)
PROFILE = """mos_pipelines:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb   # relative to the working directory: one profile for every world
      schema: main
      threads: 2
      settings:
        TimeZone: UTC
"""


@dataclass
class EffectCheck:
    kind: str
    description: str
    expected: str  # higher | lower
    measurable: bool
    found: bool = False
    insight_ids: list[str] = field(default_factory=list)


@dataclass
class TruthEvaluation:
    effects: list[EffectCheck]
    reported: int
    null_slice_insights: list[str]
    scores: list[InsightScore]  # one per accepted insight

    @property
    def measurable(self) -> list[EffectCheck]:
        return [e for e in self.effects if e.measurable]

    @property
    def found(self) -> int:
        return sum(e.found for e in self.measurable)

    def count(self, verdict: str) -> int:
        return sum(s.verdict == verdict for s in self.scores)

    @property
    def supported(self) -> int:
        return self.count(SUPPORTED)

    @property
    def checkable(self) -> int:
        return self.count(SUPPORTED) + self.count(UNSUPPORTED)


def evaluate(insights: pd.DataFrame, truth: Path) -> TruthEvaluation:
    """Compare one run's accepted insights (``insight_tables.run_insights`` frame) with the world's truth."""
    planted = json.loads((truth / "planted_effects.json").read_text())
    manifest = json.loads((truth / "manifest.json").read_text())
    start = datetime.date.fromisoformat(manifest["config"]["start_date"])
    last_day = manifest["config"]["days"] - 1
    accepted = insights[insights["status"] == "accepted"]
    rows = [(r.insight_id, r.insight_type, r.evidence, r.effect_size) for r in accepted.itertuples()]

    def subject(ev: dict) -> dict:
        return ev.get("subject") or {}

    effects = []
    for effect in planted["effects"]:
        if effect["type"] == "channel_conversion":
            expected = "higher" if effect["multiplier"] > 1 else "lower"
            check = EffectCheck(
                "channel_conversion",
                f"{effect['channel']} converts {effect['multiplier']}× in {effect['region']}",
                expected,
                effect["multiplier"] != 1,
            )
            check.insight_ids = [
                i
                for i, t, ev, _ in rows
                if t == "region_comparison"
                and subject(ev).get("metric") == "conversion_rate"
                and subject(ev).get("channel") == effect["channel"]
                and subject(ev).get("region") == effect["region"]
                and ev.get("direction") == expected
            ]
        else:
            metric = {"click": "click_rate", "conversion": "cvr"}.get(effect["metric"])
            expected = "higher" if effect["lift"] > 0 else "lower"
            check = EffectCheck(
                "variant_lift",
                f"{effect['campaign']} variant {effect['variant']} {effect['metric']} "
                f"{effect['lift']:+.0%} in {effect['region']}",
                expected,
                metric is not None and effect["lift"] != 0,
            )
            check.insight_ids = [
                i
                for i, t, ev, _ in rows
                if t == "experiment_winner"
                and subject(ev).get("metric") == metric
                and subject(ev).get("campaign_id") == effect["campaign"]
                and subject(ev).get("region") == effect["region"]
                and ((subject(ev).get("better") == effect["variant"]) == (expected == "higher"))
                and effect["variant"] in (subject(ev).get("variant_id"), subject(ev).get("compared_with"))
            ]
        check.found = bool(check.insight_ids) and check.measurable
        effects.append(check)
    for change in planted.get("volume_changes", []):
        expected = "higher" if change["factor"] > 1 else "lower"
        to_day = change["to_day"] if change["to_day"] is not None else last_day
        tested = [
            (i, ev)
            for i, t, ev, _ in rows
            if t == "anomaly" and subject(ev).get("metric") == "sessions" and subject(ev).get("scope") == "overall"
        ]
        week_end = start + datetime.timedelta(days=last_day)
        overlap = len(set(range(change["from_day"], to_day + 1)) & set(range(last_day - 6, last_day + 1)))
        check = EffectCheck(
            "volume_change",
            f"traffic × {change['factor']} on days {change['from_day']}–{to_day}",
            expected,
            overlap >= 4 and change["factor"] != 1,
        )
        check.insight_ids = [
            i
            for i, ev in tested
            if ev.get("direction") == expected and subject(ev).get("week_end") == week_end.isoformat()
        ]
        check.found = bool(check.insight_ids) and check.measurable
        effects.append(check)

    null_ids = []
    for null in planted["null_slices"]:
        for i, t, ev, _ in rows:
            s = subject(ev)
            if (
                null["type"] == "channels_equal"
                and t == "channel_comparison"
                and s.get("metric") == "conversion_rate"
                and s.get("slice") == null["region"]
                and set(s.get("channels", [])) <= set(null["channels"])
            ):
                null_ids.append(i)
            if (
                null["type"] == "variants_equal"
                and t == "experiment_winner"
                and s.get("campaign_id") == null["campaign"]
                and s.get("region") == null["region"]
            ):
                null_ids.append(i)
    return TruthEvaluation(effects, len(rows), sorted(set(null_ids)), score_insights(accepted, truth))


# -- building the marketing marts of a world cheaply (tests and benchmarks) ---------------------------


def build_marketing_marts(home: Path, shared: Path) -> dict[str, float]:
    """landing → raw with the ingestion loader, then ``dbt build`` of the models the two marketing marts
    need, without tests (the full build, checks and tests run elsewhere). ``shared`` holds one dbt
    profile whose DuckDB path is relative to the world's folder, and one parse every world starts from
    (``prepare_dbt``); dbt runs in this process."""
    from mos_pipelines.ingestion.contracts import SOURCES
    from mos_pipelines.ingestion.loader import load_source

    seconds = {}
    began = time.perf_counter()
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        for source in SOURCES:
            load_source(con, source, home / "landing")
    finally:
        con.close()
    seconds["ingest"] = time.perf_counter() - began
    if not (shared / "vars.json").exists():
        prepare_dbt(shared)
    target = home / "dbt_target"
    target.mkdir(exist_ok=True)
    parsed = shared / "partial_parse.msgpack"
    if parsed.exists():
        shutil.copy(parsed, target / "partial_parse.msgpack")
    began = time.perf_counter()
    _dbt(
        [
            "build",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(shared),
            "--vars",
            (shared / "vars.json").read_text(),
            "--target-path",
            str(target),
            "--log-path",
            str(home / "dbt_logs"),
            "--select",
            MARKETING_MARTS,
            "--exclude",
            "resource_type:test resource_type:unit_test",
        ],
        cwd=home,
    )
    seconds["dbt"] = time.perf_counter() - began
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        built = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts' "
            "and table_name in ('fct_channel_performance', 'fct_variant_performance')"
        ).fetchall()
    finally:
        con.close()
    if built[0][0] != 2:
        raise RuntimeError(f"dbt reported success but the marketing marts are not in {home / 'warehouse.duckdb'}")
    return seconds


def prepare_dbt(shared: Path) -> None:
    """Write the shared profile and the configuration's dbt vars, and parse the project once, so every world's
    build starts from that parse (same vars, so dbt's partial parse holds)."""
    from mos_pipelines.configuration.dbt import vars_json
    from mos_pipelines.transform.project import dbt_executable

    shared.mkdir(parents=True, exist_ok=True)
    (shared / "profiles.yml").write_text(PROFILE)
    (shared / "vars.json").write_text(vars_json())
    target = shared / "target"
    proc = subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(shared),
            "--vars",
            (shared / "vars.json").read_text(),
            "--target-path",
            str(target),
            "--log-path",
            str(shared / "logs"),
        ],
        cwd=shared,
        capture_output=True,
        text=True,
        env={**os.environ, "MOS_HOME": str(shared)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    shutil.copy(target / "partial_parse.msgpack", shared / "partial_parse.msgpack")


def _dbt(args: list[str], cwd: Path) -> None:
    """Run dbt in this process (a pool worker imports dbt once for all its worlds) from ``cwd``.

    dbt-duckdb keeps one database per process for equal credentials; the profile's path is the same
    relative string for every world, so that cache is dropped before and after each world's build."""
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    previous = Path.cwd()
    DuckDBConnectionManager.close_all_connections()
    gc.collect()
    os.chdir(cwd)
    try:
        result = dbtRunner().invoke(args)
    finally:
        DuckDBConnectionManager.close_all_connections()
        gc.collect()
        os.chdir(previous)
    if not result.success:
        raise RuntimeError(
            f"dbt {' '.join(args[:1])} failed in {cwd}: {result.exception or 'see ' + str(cwd / 'dbt_logs')}"
        )


def build_world_marts(seed: int, people: int, days: int, scenario: Path | None, base: Path) -> tuple[Path, dict]:
    """Generate one world under ``base/seed<N>`` and build its marketing marts (a process-pool task)."""
    from mos_pipelines.simulation import WorldConfig, generate_world

    home = base / f"seed{seed}"
    began = time.perf_counter()
    generate_world(WorldConfig(seed=seed, people=people, days=days, scenario=scenario), home)
    seconds = {"generate": time.perf_counter() - began}
    seconds.update(build_marketing_marts(home, base / "shared"))
    return home, seconds


def build_worlds(
    seeds: list[int], people: int, days: int, scenario: Path | None, base: Path, workers: int = 2
) -> list[tuple[Path, dict]]:
    """Worlds for several seeds, built ``workers`` at a time (each: generate, ingest, dbt marts)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    prepare_dbt(base / "shared")
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(build_world_marts, s, people, days, scenario, base) for s in seeds]
        return [f.result() for f in futures]


def evaluate_world(home: Path, config=None, semantic=None, now: datetime.datetime | None = None) -> TruthEvaluation:
    """Run the insights on a built world (statements from templates) and compare them with its truth."""
    from mos_pipelines.insights import insight_tables
    from mos_pipelines.insights.pipeline import generate_insights

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        run = generate_insights(con, config=config, semantic=semantic, now=now, use_llm=False)
        rows = insight_tables.run_insights(con, run.created_at, status=None)
    finally:
        con.close()
    return evaluate(rows, home / "truth")


def recall_table(results: list[tuple[int, TruthEvaluation]]) -> str:
    """Markdown: per seed and in total, planted effects found, insights about null slices, and every accepted
    insight against the generating truth (supported / unsupported / not checkable, with the reasons)."""
    lines = [
        "| seed | planted effects found | reported insights | about null slices | supported by the truth | "
        "unsupported | not checkable |",
        "|---|---|---|---|---|---|---|",
    ]
    totals = [0, 0, 0, 0, 0, 0, 0]
    for seed, ev in results:
        row = [
            ev.found,
            len(ev.measurable),
            ev.reported,
            len(ev.null_slice_insights),
            ev.supported,
            ev.count(UNSUPPORTED),
            ev.count(NOT_CHECKABLE),
        ]
        totals = [t + r for t, r in zip(totals, row)]
        lines.append(f"| {seed} | {row[0]}/{row[1]} | {row[2]} | {row[3]} | {row[4]} | {row[5]} | {row[6]} |")
    found, measurable, reported, null, supported, unsupported, unchecked = totals
    checkable = supported + unsupported
    lines.append(
        f"| **all** | **{found}/{measurable} = {found / max(measurable, 1):.1%}** | {reported} | "
        f"**{null} = {null / max(reported, 1):.1%}** | **{supported}/{checkable} = "
        f"{supported / max(checkable, 1):.1%}** | {unsupported} | {unchecked} |"
    )
    kinds: dict[str, list[int]] = {}
    for _, ev in results:
        for e in ev.measurable:
            kinds.setdefault(f"{e.kind}: {e.description}", [0, 0])
            kinds[f"{e.kind}: {e.description}"][0] += e.found
            kinds[f"{e.kind}: {e.description}"][1] += 1
    lines += ["", "| planted effect | found |", "|---|---|"]
    lines += [f"| {k} | {f}/{n} |" for k, (f, n) in kinds.items()]
    by_type: dict[str, list[int]] = {}
    for _, ev in results:
        for score in ev.scores:
            metric = score.key.split("|")[1] if score.key.count("|") else ""
            name = f"{score.insight_type} {metric if score.insight_type != 'budget_pacing' else ''}".strip()
            counts = by_type.setdefault(name, [0, 0, 0, 0])
            counts[(SUPPORTED, UNSUPPORTED, NOT_CHECKABLE).index(score.verdict)] += 1
            counts[3] += score.approximate
    lines += [
        "",
        "| accepted insight type | supported | unsupported | not checkable | of them approximate |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {k} | {a} | {b} | {c} | {d} |" for k, (a, b, c, d) in sorted(by_type.items())]
    unchecked_reasons: dict[str, int] = {}
    unsupported_rows = []
    for seed, ev in results:
        for score in ev.scores:
            if score.verdict == NOT_CHECKABLE:
                unchecked_reasons[f"{score.insight_type}: {score.reason}"] = (
                    unchecked_reasons.get(f"{score.insight_type}: {score.reason}", 0) + 1
                )
            elif score.verdict == UNSUPPORTED:
                unsupported_rows.append(f"| {seed} | {score.key.replace('|', ' · ')} | {score.reason} |")
    if unsupported_rows:
        lines += ["", "| seed | unsupported insight | truth |", "|---|---|---|", *unsupported_rows]
    if unchecked_reasons:
        lines += ["", "| not checkable (why) | insights |", "|---|---|"]
        lines += [f"| {k} | {n} |" for k, n in sorted(unchecked_reasons.items())]
    return "\n".join(lines)
