"""MMM parameter recovery on weekly worlds with known curves (mos_pipelines/simulation/mmm_world.py).

For each regime × seed: generate 2 years weekly × 6 channels × 4 regions, fit the MMM (default settings unless
overridden), compare with the truth, then optimise a 13-week budget equal to the last 13 weeks' spend and score the
optimiser's split against the current split (the last 13 weeks' mix) in the simulator's truth. Appends one JSON line
per fit to benchmarks/results/mmm.jsonl and prints the tables.

    nice -n 10 .venv/bin/python benchmarks/mmm/recovery.py --seeds 1-5 --regimes flighted,steady
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from mos_pipelines.mmm.data import weekly
from mos_pipelines.mmm.model import Settings, fit
from mos_pipelines.mmm.optimize import evaluate, optimize
from mos_pipelines.simulation.mmm_world import generate

RESULTS = Path(__file__).resolve().parents[1] / "results" / "mmm.jsonl"
MIN_SHARE, MAX_SHARE, HORIZON_WEEKS = 0.05, 0.40, 13


def seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def ranking_ok(true_roi: np.ndarray, est: np.ndarray, ratio: float = 1.3) -> tuple[bool, int, int]:
    """Every pair of channels whose true ROIs differ by ≥ 30 % ordered as the truth; (ok, pairs, wrong)."""
    pairs = wrong = 0
    for i in range(len(true_roi)):
        for j in range(len(true_roi)):
            if true_roi[i] >= ratio * true_roi[j]:
                pairs += 1
                wrong += int(est[i] <= est[j])
    return wrong == 0, pairs, wrong


def run_one(seed: int, regime: str, settings: Settings, weeks: int, regions: int, channels: int) -> dict:
    world = generate(seed, regime, weeks=weeks, n_regions=regions, n_channels=channels)
    data = weekly(world.spend, world.outcome.rename(columns={"revenue_usd": "value"}), min_weeks=8)
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = fit(data, settings)
    wall = time.perf_counter() - started
    truth = world.truth.set_index("channel").loc[data.channels]
    est = result.channel_roi.set_index("channel").loc[data.channels]
    covered = (truth["roi"] >= est["roi_lower"]) & (truth["roi"] <= est["roi_upper"])
    m_covered = (truth["marginal_roi"] >= est["marginal_roi_lower"]) & (
        truth["marginal_roi"] <= est["marginal_roi_upper"]
    )
    rank, pairs, wrong = ranking_ok(truth["roi"].to_numpy(), est["roi_mean"].to_numpy())
    # response curve at the observed (mean weekly) spend, steady state, all regions
    mean_weekly = data.spend.sum(axis=1).mean(axis=0)
    fitted_curve = result.posterior.steady_weekly(mean_weekly).mean(axis=0)
    mix = data.region_mix()
    true_curve = np.array(
        [
            world.steady_outcome(
                np.eye(len(data.channels))[c][None, :] * (mean_weekly[c] * mix[c])[:, None], data.channels
            )
            for c in range(len(data.channels))
        ]
    )
    curve_err = np.abs(fitted_curve - true_curve) / true_curve
    # optimiser vs the current split (the last 13 weeks' mix), same budget, judged by the truth
    recent = data.spend[-HORIZON_WEEKS:].sum(axis=(0, 1))
    budget = float(recent.sum())
    current = recent / recent.sum()
    current_bounded = np.clip(current, MIN_SHARE, MAX_SHARE)
    split = optimize(result.posterior, budget, HORIZON_WEEKS, MIN_SHARE, MAX_SHARE)

    def truth_outcome(shares: np.ndarray) -> float:
        weekly_spend = shares * budget / HORIZON_WEEKS
        return HORIZON_WEEKS * world.steady_outcome((weekly_spend[:, None] * mix).T, data.channels)

    t_opt, t_cur = truth_outcome(split.shares), truth_outcome(current)
    m_opt = evaluate(result.posterior, split.shares, budget, HORIZON_WEEKS)
    m_cur = evaluate(result.posterior, current, budget, HORIZON_WEEKS)
    draws_gain = HORIZON_WEEKS * result.posterior.steady_weekly(split.shares * budget / HORIZON_WEEKS).sum(
        axis=1
    ) - HORIZON_WEEKS * result.posterior.steady_weekly(current * budget / HORIZON_WEEKS).sum(axis=1)
    violated = bool(
        ((split.shares < MIN_SHARE - 1e-9) | (split.shares > MAX_SHARE + 1e-9)).any()
        or abs(split.shares.sum() - 1) > 1e-6
    )
    g = result.diagnostics
    return {
        "bench": "mmm_recovery",
        "date": time.strftime("%Y-%m-%d"),
        "seed": seed,
        "regime": regime,
        "shape": data.shape,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "sampler": settings.sampler,
        "fit_seconds": round(wall, 1),
        "sampling_seconds": round(result.fit_seconds, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "max_rhat": round(g["max_rhat"], 4),
        "min_ess_bulk": round(g["min_ess_bulk"], 1),
        "divergences": int(g["divergences"]),
        "converged": result.converged,
        "channels": data.channels,
        "true_roi": [round(x, 3) for x in truth["roi"]],
        "roi_mean": [round(x, 3) for x in est["roi_mean"]],
        "roi_lower": [round(x, 3) for x in est["roi_lower"]],
        "roi_upper": [round(x, 3) for x in est["roi_upper"]],
        "roi_covered": [bool(x) for x in covered],
        "true_marginal_roi": [round(x, 3) for x in truth["marginal_roi"]],
        "marginal_roi_mean": [round(x, 3) for x in est["marginal_roi_mean"]],
        "marginal_covered": [bool(x) for x in m_covered],
        "ranking_ok": rank,
        "ranking_pairs": pairs,
        "ranking_wrong": wrong,
        "curve_error_at_mean_spend": [round(x, 4) for x in curve_err],
        "budget_usd": round(budget, 2),
        "current_share": [round(x, 4) for x in current],
        "current_within_bounds": bool(np.allclose(current, current_bounded)),
        "optimised_share": [round(x, 4) for x in split.shares],
        "bounds_violated": violated,
        "truth_outcome_current": round(t_cur, 2),
        "truth_outcome_optimised": round(t_opt, 2),
        "truth_gain_pct": round(100 * (t_opt - t_cur) / t_cur, 3),
        "model_gain_mean": round(float(draws_gain.mean()), 2),
        "model_gain_90": [
            round(float(np.quantile(draws_gain, 0.05)), 2),
            round(float(np.quantile(draws_gain, 0.95)), 2),
        ],
        "model_outcome_optimised": [round(x, 2) for x in m_opt],
        "model_outcome_current": [round(x, 2) for x in m_cur],
        "python": platform.python_version(),
    }


def summarise(rows: list[dict]) -> str:
    """A Markdown table row per sampler × regime (rows from before the sampler was recorded: pymc): fits, fit seconds (and load), ROI coverage, ranking, curve error, optimiser gain."""
    lines = [
        "| sampler | regime | fits | fit s (load) | ROI in 90 % interval | marginal ROI in 90 % | ranking correct "
        "| curve error at mean spend (median, max) | optimiser gain in truth (min–max) | model's gain 90 % interval "
        "above 0 | bounds violated |",
        "|---|---|---:|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for sampler, regime in dict.fromkeys((r.get("sampler", "pymc"), r["regime"]) for r in rows):
        rs = [r for r in rows if r["regime"] == regime and r.get("sampler", "pymc") == sampler]
        cov = sum(sum(r["roi_covered"]) for r in rs)
        mcov = sum(sum(r["marginal_covered"]) for r in rs)
        cases = sum(len(r["roi_covered"]) for r in rs)
        errs = [e for r in rs for e in r["curve_error_at_mean_spend"]]
        gains = [r["truth_gain_pct"] for r in rs]
        secs = [r["fit_seconds"] for r in rs]
        loads = [r["load_before"][0] for r in rs]
        lines.append(
            f"| {sampler} | {regime} | {len(rs)} | {min(secs):.0f}–{max(secs):.0f} ({min(loads):.1f}–{max(loads):.1f}) | "
            f"{cov}/{cases} ({cov / cases:.0%}) | {mcov}/{cases} ({mcov / cases:.0%}) | "
            f"{sum(r['ranking_ok'] for r in rs)}/{len(rs)} | {np.median(errs):.1%}, {max(errs):.1%} | "
            f"+{min(gains):.1f} % – +{max(gains):.1f} % | {sum(r['model_gain_90'][0] > 0 for r in rs)}/{len(rs)} | "
            f"{sum(r['bounds_violated'] for r in rs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--regimes", default="flighted,steady")
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--channels", type=int, default=6)
    parser.add_argument("--draws", type=int, default=Settings.draws)
    parser.add_argument("--tune", type=int, default=Settings.tune)
    parser.add_argument("--chains", type=int, default=Settings.chains)
    parser.add_argument("--sampler", default=Settings.sampler, help="pymc, nutpie or numpyro")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summarise", type=Path, help="print the tables of a results file and stop")
    args = parser.parse_args()
    if args.summarise:
        print(summarise([json.loads(line) for line in args.summarise.read_text().splitlines() if line.strip()]))
        return
    settings = Settings(
        draws=args.draws, tune=args.tune, chains=args.chains, cores=min(args.chains, 2), sampler=args.sampler
    )
    rows = []
    for regime in args.regimes.split(","):
        for seed in seeds(args.seeds):
            row = run_one(seed, regime, settings, args.weeks, args.regions, args.channels)
            rows.append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(
                f"{regime:9s} seed {seed}: fit {row['fit_seconds']:6.1f} s (load {row['load_before'][0]:.1f}), "
                f"r-hat {row['max_rhat']:.3f}, ESS {row['min_ess_bulk']:.0f}, div {row['divergences']}, "
                f"ROI covered {sum(row['roi_covered'])}/{len(row['roi_covered'])}, ranking "
                f"{'ok' if row['ranking_ok'] else 'WRONG'} ({row['ranking_wrong']}/{row['ranking_pairs']}), "
                f"curve err median {np.median(row['curve_error_at_mean_spend']):.3f}, "
                f"gain {row['truth_gain_pct']:+.2f} % (model {row['model_gain_mean']:,.0f} "
                f"[{row['model_gain_90'][0]:,.0f}, {row['model_gain_90'][1]:,.0f}]), bounds ok {not row['bounds_violated']}",
                flush=True,
            )
    print(summarise(rows))


if __name__ == "__main__":
    main()
