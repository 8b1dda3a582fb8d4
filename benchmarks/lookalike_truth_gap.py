"""How close each lookalike audience gets to the simulator's true propensity, run by hand on a built world.

    MOS_HOME=/tmp/demo .venv/bin/python benchmarks/lookalike_truth_gap.py [--repeats 10] [--model linear]
        [--features a,b,c] [--config config/lookalike.yaml] [--no-learn-from] [--label text]

For every audience of the config, the model is fitted ``--repeats`` times with a different random
state (so a different held-out fifth of the seed and a different population sample each time) on the
warehouse's ``marts.dim_customer_features`` (read-only). Reported per audience: the held-out AUC and the
true propensity's AUC on the same held-out people, averaged over the repeats with their spread, the
gap between them, and the 95 % bootstrap interval of the first repeat (what one fit's model card
shows). One held-out seed of 30 people moves the AUC by ±0.1; the mean over repeats is the figure to
compare with the target (held-out AUC within 0.05 of the true propensity's).

Also reported, to separate what the features can carry from what the model makes of them: the AUC of
the true propensity's *firmographic part* (industry, size, persona, seniority, region coefficients of
the true attributes, no engagement) over the whole audience. Appends a JSON line per audience to
benchmarks/results/lookalike_truth.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mos_pipelines.configuration import load_lookalike as load_config  # noqa: E402
from mos_pipelines.lookalike.audiences import audience_frame, feature_spec, wider_frame  # noqa: E402
from mos_pipelines.lookalike.model import fit_lookalike  # noqa: E402
from mos_pipelines.lookalike.truth import true_propensity_by_customer  # noqa: E402


def firmographic_truth(con, truth_dir: Path, customer_ids: pd.Series) -> np.ndarray | None:
    """The true propensity's linear part from the person's true firmographics only (no engagement)."""
    from mos_pipelines.identity.truth_eval import person_by_customer

    person = person_by_customer(con, truth_dir / "identity_truth.csv")
    people = pd.read_csv(truth_dir / "people.csv").set_index("person_id")
    rows = people.reindex(customer_ids.astype(str).map(person).to_numpy())
    coefficients = json.loads((truth_dir / "propensity_model.json").read_text())["coefficients"]
    linear = sum(rows[f].map(c).fillna(0).to_numpy(dtype=float) for f, c in coefficients.items() if isinstance(c, dict))
    return np.asarray(linear)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--model", choices=["gradient_boosting", "linear"], default=None)
    parser.add_argument("--features", default=None, help="comma-separated; default: each audience's own")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--no-learn-from", action="store_true", help="ignore the audiences' learn_from")
    parser.add_argument("--label", default="", help="free text stored with the result line")
    args = parser.parse_args()

    home = Path(os.environ.get("MOS_HOME", ROOT / ".mos")).resolve()
    config = load_config(args.config)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    truth = true_propensity_by_customer(con, home / "truth")
    if truth is None:
        raise SystemExit(f"{home}/truth has no simulator truth: this benchmark needs a generated world")
    out = ROOT / "benchmarks" / "results" / "lookalike_truth.jsonl"
    for audience in config.audiences:
        if args.features:
            audience = audience.model_copy(update={"features": tuple(args.features.split(","))})
        if args.no_learn_from:
            audience = audience.model_copy(update={"learn_from": None})
        features = audience.features
        frame, is_seed = audience_frame(con, audience)
        wider = wider_frame(con, audience)
        spec = feature_spec(frame, features)
        true_p = frame["customer_id"].map(truth).astype(float)
        true_p = true_p.fillna(true_p.mean()).to_numpy()
        firmo = firmographic_truth(con, home / "truth", frame["customer_id"])
        runs = []
        first_ci = first_gap_ci = None
        for repeat in range(args.repeats):
            settings = config.model
            settings = settings.model_copy(
                update={"random_state": settings.random_state + repeat, **({"kind": args.model} if args.model else {})}
            )
            fit = fit_lookalike(
                frame, is_seed, spec, settings, audience=audience.name, true_propensity=true_p, wider=wider
            )
            ev = fit.evaluation
            runs.append((ev.auc, ev.true_propensity_auc, ev.recall_at[10], ev.true_propensity_spearman))
            if repeat == 0:
                first_ci, first_gap_ci = ev.auc_ci, ev.true_propensity_gap_ci
        r = np.asarray(runs)
        line = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": platform.node(),
            "mos_home": str(home),
            "label": args.label,
            "audience": audience.name,
            "model": args.model or config.model.kind,
            "features": list(features),
            "repeats": args.repeats,
            "learn_from": list(audience.learn_from) if audience.learn_from else None,
            "seed": int(is_seed.sum()),
            "population": int((~is_seed).sum()),
            "holdout_seed": fit.sizes["holdout_seed"],
            "eval_population": fit.sizes["eval_population"],
            "auc_mean": round(float(r[:, 0].mean()), 4),
            "auc_sd": round(float(r[:, 0].std(ddof=1)), 4),
            "true_propensity_auc_mean": round(float(r[:, 1].mean()), 4),
            "gap_mean": round(float((r[:, 1] - r[:, 0]).mean()), 4),
            "gap_sd": round(float((r[:, 1] - r[:, 0]).std(ddof=1)), 4),
            "recall_at_10_mean": round(float(r[:, 2].mean()), 4),
            "spearman_vs_truth_mean": round(float(r[:, 3].mean()), 4),
            "first_fit_auc_ci": [round(v, 4) for v in first_ci] if first_ci else None,
            "first_fit_gap_ci": [round(v, 4) for v in first_gap_ci] if first_gap_ci else None,
            "whole_audience_auc": {
                "true_propensity": round(float(roc_auc_score(is_seed, true_p)), 4),
                "true_firmographics_only": round(float(roc_auc_score(is_seed, firmo)), 4)
                if firmo is not None
                else None,
            },
        }
        print(json.dumps(line))
        with out.open("a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
