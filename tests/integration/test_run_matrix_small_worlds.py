"""Worlds smaller than the demo build everything they can: 50 people × 3 days, and 300 × 14 with a landing file
of 2 good and 3 malformed events (one without timestamp or identifier) that must not block the warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mos_pipelines.settings import PROJECT_ROOT
from tests.integration.run_matrix import BUNDLED_LOOKALIKE, MatrixWorld, assert_clean_success, build, generate, mos

LOOKALIKE_CONFIG = BUNDLED_LOOKALIKE  # the real audiences: their seeds are too small here, and must be skipped

MALFORMED_FILE = "zz_two_good_three_bad.jsonl"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> MatrixWorld:
    home = tmp_path_factory.mktemp("tiny")
    generate(home, people=50, days=3)
    return build(home)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> MatrixWorld:
    home = tmp_path_factory.mktemp("small")
    generate(home, people=300, days=14)
    day = json.loads((home / "truth" / "manifest.json").read_text())["config"]["start_date"]
    good = [
        {
            "type": "track",
            "messageId": f"mx-good-{i}",
            "timestamp": f"{day}T10:0{i}:00Z",
            "anonymousId": "mx-anon",
            "event": "Page Viewed",
        }
        for i in range(2)
    ]
    lines = [json.dumps(e) for e in good] + [
        '{"type":"track","messageId":"x"}',  # no timestamp, no identifier
        '{"type": "track", "messageId": "mx-bad-2", "timestamp": "yesterday", "anonymousId": "a"}',
        "this is not json",
    ]
    (home / "landing" / "events" / MALFORMED_FILE).write_text("\n".join(lines) + "\n")
    return build(home)


def test_fifty_people_three_days_build_and_skip_what_they_cannot_compute(tiny: MatrixWorld) -> None:
    assert_clean_success(tiny)
    skipped = dict(
        ((asset, part), reason)
        for asset, part, reason in tiny.query("select asset, part, reason from ops.skipped_parts")
    )
    reason = skipped[("ml/lookalike_scores", "paying_lookalike_eu")]
    assert "fewer than the minimum" in reason and "min_seed_size" in reason
    assert "warned (parts skipped" in tiny.run.stdout
    assert "Not computed in the latest run" in tiny.run.stdout and "paying_lookalike_eu" in tiny.run.stdout
    assert tiny.scalar("select count(*) from marts.dim_customers") > 0
    assert tiny.scalar("select status from ml.model_runs where audience = 'paying_lookalike_eu'") == "skipped"
    report = (tiny.home / "reports" / "insights_latest.html").read_text()
    assert "Not computed in this run" in report and "ml/lookalike_scores · paying_lookalike_eu" in report
    assert "email__nurture" in tiny.activation.stdout


def test_three_hundred_people_get_insights_and_activation_rows(small: MatrixWorld) -> None:
    assert_clean_success(small)
    assert small.scalar("select count(*) from insights.insights where status = 'accepted'") > 0
    assert small.scalar("select count(*) from activation.sync_email__nurture") > 0
    assert small.scalar("select count(*) from activation.sync_crm__lifecycle_stages") > 0
    dry_run = Path(small.home / "activation" / "dry_run")
    assert dry_run.is_dir() and any(dry_run.rglob("*"))
    assert small.run.stdout.count("\n") < 120


def test_three_malformed_lines_are_quarantined_and_block_nothing(small: MatrixWorld) -> None:
    quarantined = small.query(
        f"select line, reason from raw.quarantine where source_file like '%{MALFORMED_FILE}' order by line"
    )
    assert [line for line, _ in quarantined] == [3, 4, 5], quarantined
    loaded = small.scalar(f"select count(*) from raw.events where _source_file like '%{MALFORMED_FILE}'")
    assert loaded == 2
    gate = small.query(
        "select passed, details from ops.quality_results where check_name = 'missing_identifiers' "
        "order by evaluated_at desc limit 1"
    )[0]
    assert gate[0], gate[1]
    assert small.scalar("select count(*) from marts.fct_events where event_id like 'mx-good-%'") == 2


def test_a_broken_activation_config_leaves_ingestion_and_dbt_runnable(tiny: MatrixWorld, tmp_path: Path) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "config" / "activation.yaml").read_text())
    name = next(iter(config["destinations"]))
    config["destinations"][name]["channel"] = "carrier_pigeon"
    broken = tmp_path / "activation.yaml"
    broken.write_text(yaml.safe_dump(config))
    run = mos(
        tiny.home,
        "run",
        "--select",
        "key:raw/orders or key:staging/stg_commerce__orders",
        env={"MOS_ACTIVATION_CONFIG": str(broken)},
    )
    assert run.code == 1 and "Traceback" not in run.output
    message = run.output.replace("\n", "")
    assert "not loaded: activation:" in message and str(broken) in message and f"destinations.{name}.channel" in message
    assert "succeeded: 2 assets materialized" in message
    assert "domain(s) did not load" in message


def _new_blueprint(world: MatrixWorld, budget: int):
    objective = "Expand paying customers in the EU"
    return mos(world.home, "blueprint", "new", "--objective", objective, "--budget", str(budget), "--months", "1")


def test_a_blueprint_is_planned_run_and_simulated_against_the_default_schedule(small: MatrixWorld) -> None:
    """Objective → approved blueprint → `mos simulate --blueprint`: the world answers both policies for the same
    dollars, the rows land in blueprints.simulations, and a second simulation gives the same figures."""
    new = _new_blueprint(small, budget=3000)
    assert new.code == 0, new.stdout + new.stderr
    bid = next(w for w in new.stdout.split() if w.startswith("bp_"))
    approved = mos(small.home, "blueprint", "approve", bid, "--by", "ana")
    assert approved.code == 0, approved.stdout + approved.stderr
    first = mos(small.home, "simulate", "--blueprint", bid, "--days", "14")
    assert first.code == 0, first.stdout + first.stderr
    assert "default schedule" in first.stdout and "Goal attainment" in first.stdout
    again = mos(small.home, "simulate", "--blueprint", bid, "--days", "14")
    assert again.code == 0, again.stdout + again.stderr
    rows = small.query(
        "select policy, spend_usd, new_customers, expected_new_customers, sessions from blueprints.simulations "
        "order by simulated_at, policy"
    )
    assert len(rows) == 6 and {r[0] for r in rows} == {"blueprint", "default_schedule", "default_mix_in_segment"}
    assert rows[:3] == rows[3:]  # same world, same blueprint: same answer
    spends = [r[1] for r in rows[:3]]
    assert spends[0] > 0 and max(spends) - min(spends) < 0.05  # the same dollars for every policy
    steps = small.scalar(f"select count(distinct step_id) from ops.step_runs where blueprint_id = '{bid}'")
    assert steps >= 5  # the blueprint's own steps ran first (its audiences and send list)
    draft = _new_blueprint(small, budget=1000)
    assert draft.code == 0, draft.stdout + draft.stderr
    other = next(w for w in draft.stdout.split() if w.startswith("bp_"))
    refused = mos(small.home, "simulate", "--blueprint", other, "--days", "7")
    assert refused.code == 2 and "draft" in refused.stderr
