"""Scoring accepted insights against a world's generating truth (mos_pipelines/simulation/insight_truth.py),
on a small hand-written truth: every verdict, the reason, and what is not checkable."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest

from mos_pipelines.simulation.insight_truth import (
    NOT_CHECKABLE,
    SUPPORTED,
    UNSUPPORTED,
    score_insights,
    summarise,
)

START = datetime.date(2026, 1, 1)
REGIONS = ["EU", "NA"]


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """21 days: search converts 10 % (EU) / 5 % (NA), organic 5 % everywhere; search's traffic halves in the last
    week; search spends $2 a session; revenue $100 an order; email variant B clicks 1.5× A in NA only."""
    folder = tmp_path_factory.mktemp("truth")
    rows = []
    for day in range(21):
        for region in REGIONS:
            for channel, rate in (("paid_search", 0.10 if region == "EU" else 0.05), ("organic", 0.05)):
                sessions = 100.0 * (0.5 if channel == "paid_search" and day >= 14 else 1.0)
                conversions = sessions * rate
                rows.append(
                    {
                        "day": day,
                        "date": (START + datetime.timedelta(days=day)).isoformat(),
                        "channel": channel,
                        "region": region,
                        "sessions": sessions,
                        "orders": conversions / 0.9,
                        "conversions": conversions,
                        "revenue_usd": 100 * conversions,
                        "new_customers": conversions / 2,
                        "cost_usd": 2 * sessions if channel == "paid_search" else 0.0,
                    }
                )
    pd.DataFrame(rows).to_csv(folder / "expected_daily.csv", index=False)
    pd.DataFrame(
        [
            {
                "campaign_id": "em",
                "variant_id": v,
                "region": r,
                "open_rate": 0.3,
                "click_rate": 0.06 if (v, r) == ("B", "NA") else 0.04,
                "conversion_rate": 0.1,
            }
            for v in ("A", "B")
            for r in REGIONS
        ]
    ).to_csv(folder / "arm_rates.csv", index=False)
    pd.DataFrame(
        [
            {"campaign_id": "em", "variant_id": v, "region": r, "sent": True}
            for v in ("A", "B")
            for r in REGIONS
            for _ in range(10)
        ]
    ).to_parquet(folder / "email_sends.parquet")
    return folder


WINDOW = {"start": "2026-01-01", "end": "2026-01-21", "days": 21}


def insight(
    kind: str, key: str, subject: dict, direction: str | None = None, effect: float | None = None, **evidence
) -> dict:
    return {
        "insight_id": key,
        "insight_type": kind,
        "effect_size": effect,
        "evidence": {"key": key, "subject": subject, "direction": direction, **evidence},
    }


def anomaly(metric: str, scope: str, direction: str) -> dict:
    summary = [{"week_start": "2026-01-15", "week_end": "2026-01-21", "baseline_weeks": 2}]
    return insight(
        "anomaly",
        f"anomaly|{metric}|{scope}",
        {"metric": metric, "scope": scope},
        direction,
        summary=summary,
        window=WINDOW,
    )


def test_each_kind_of_insight_is_scored_against_the_truth(truth: Path) -> None:
    rows = [
        insight(
            "channel_comparison",
            "cc-right",
            {
                "metric": "conversion_rate",
                "dimension": "region",
                "slice": "EU",
                "channels": ["organic", "paid_search"],
                "better": "paid_search",
            },
            "higher",
            2.0,
            window=WINDOW,
        ),
        insight(
            "channel_comparison",
            "cc-null",
            {
                "metric": "conversion_rate",
                "dimension": "region",
                "slice": "NA",
                "channels": ["organic", "paid_search"],
                "better": "organic",
            },
            "higher",
            1.4,
            window=WINDOW,
        ),
        insight(
            "channel_comparison",
            "cc-segment",
            {
                "metric": "conversion_rate",
                "dimension": "segment",
                "slice": "large",
                "channels": ["organic", "paid_search"],
                "better": "paid_search",
            },
            "higher",
            1.5,
            window=WINDOW,
        ),
        insight(
            "region_comparison",
            "rc-wrong",
            {"metric": "conversion_rate", "channel": "paid_search", "region": "EU"},
            "lower",
            0.6,
            window=WINDOW,
        ),
        anomaly("sessions", "paid_search", "lower"),
        anomaly("sessions", "organic", "higher"),
        anomaly("revenue", "overall", "lower"),
        insight(
            "budget_pacing",
            "pace",
            {"campaign_id": "paid_search_eu", "channel": "paid_search", "region": "EU"},
            "lower",
            0.5,
            summary=[{"daily_budget_usd": 400.0, "days": 7, "first_day": "2026-01-15", "last_day": "2026-01-21"}],
        ),
        insight(
            "experiment_winner",
            "ew-na",
            {
                "metric": "click_rate",
                "campaign_id": "em",
                "region": "NA",
                "variant_id": "A",
                "compared_with": "B",
                "better": "B",
            },
            "lower",
            0.6,
        ),
        insight(
            "experiment_winner",
            "ew-eu",
            {
                "metric": "click_rate",
                "campaign_id": "em",
                "region": "EU",
                "variant_id": "A",
                "compared_with": "B",
                "better": "A",
            },
            "higher",
            1.3,
        ),
        insight(
            "holdout_lift",
            "lift",
            {
                "metric": "cvr",
                "campaign_id": "em",
                "region": "all",
                "variant_id": "A+B",
                "compared_with": "holdout",
                "better": "treated",
            },
            "higher",
            1.2,
        ),
        insight("lookalike_degradation", "ll", {"audience_id": "a"}, "lower", 0.5),
    ]
    scores = {s.insight_id: s for s in score_insights(pd.DataFrame(rows), truth)}
    verdicts = {k: s.verdict for k, s in scores.items()}
    assert verdicts == {
        "cc-right": SUPPORTED,
        "cc-null": UNSUPPORTED,
        "cc-segment": SUPPORTED,
        "rc-wrong": UNSUPPORTED,
        "anomaly|sessions|paid_search": SUPPORTED,
        "anomaly|sessions|organic": UNSUPPORTED,
        "anomaly|revenue|overall": SUPPORTED,
        "pace": SUPPORTED,
        "ew-na": SUPPORTED,
        "ew-eu": UNSUPPORTED,
        "lift": SUPPORTED,
        "ll": NOT_CHECKABLE,
    }
    assert scores["cc-right"].true_effect == pytest.approx(2.0)
    assert scores["cc-segment"].approximate and not scores["cc-right"].approximate
    assert scores["rc-wrong"].true_effect == pytest.approx(1 / 2)  # EU converts 2× NA: the other direction
    assert scores["anomaly|sessions|paid_search"].true_effect == pytest.approx(-0.5)
    assert "+0.0%" in scores["anomaly|sessions|organic"].reason
    # overall revenue a day: search $1,000 (EU) + $500 (NA), organic $500 + $500; search halves → −$750 of $2,500
    assert scores["anomaly|revenue|overall"].true_effect == pytest.approx(-0.30)
    assert scores["pace"].true_effect == pytest.approx(100 / 400)
    assert scores["ew-na"].true_effect == pytest.approx(1.5)
    summary = summarise(list(scores.values()))
    assert summary["supported_share"] == pytest.approx(7 / 11)
    assert summary["not_checkable_reasons"] == {"the truth has no model-quality truth for lookalike fits": 1}


def test_a_small_true_difference_does_not_support_a_claim(truth: Path) -> None:
    """Organic converts 5 % in both regions: any organic region difference is unsupported, whichever way."""
    rows = [
        insight(
            "region_comparison",
            f"rc-{d}",
            {"metric": "conversion_rate", "channel": "organic", "region": "EU"},
            d,
            e,
            window=WINDOW,
        )
        for d, e in (("higher", 1.3), ("lower", 0.7))
    ]
    assert {s.verdict for s in score_insights(pd.DataFrame(rows), truth)} == {UNSUPPORTED}


def test_without_the_expected_truth_file_comparisons_are_not_checkable(truth: Path, tmp_path: Path) -> None:
    (tmp_path / "arm_rates.csv").write_bytes((truth / "arm_rates.csv").read_bytes())
    rows = [
        anomaly("sessions", "overall", "lower"),
        insight(
            "channel_comparison",
            "cc",
            {
                "metric": "roas",
                "dimension": "region",
                "slice": "all",
                "channels": ["organic", "paid_search"],
                "better": "paid_search",
            },
            "higher",
            2.0,
            window=WINDOW,
        ),
    ]
    scores = score_insights(pd.DataFrame(rows), tmp_path)
    assert [s.verdict for s in scores] == [NOT_CHECKABLE, NOT_CHECKABLE]
    assert all("expected_daily.csv is missing" in s.reason for s in scores)
