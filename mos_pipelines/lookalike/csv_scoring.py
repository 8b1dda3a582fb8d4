"""Bring-your-own data: score any CSV with the lookalike model (``mos lookalike score``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mos_pipelines.lookalike.model import (
    FeatureSpec,
    LookalikeError,
    LookalikeFit,
    ModelSettings,
    fit_lookalike,
    infer_features,
    rank_population,
)

TRUE_VALUES = {"1", "true", "t", "yes", "y"}
FALSE_VALUES = {"0", "false", "f", "no", "n", ""}


@dataclass
class CsvScoring:
    fit: LookalikeFit
    scores: pd.DataFrame  # id column, score, percentile, tier — population rows only
    spec: FeatureSpec
    rows: int


def parse_seed_flags(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """1/0, true/false, yes/no (any case; blank = not in the seed); anything else is an error naming rows."""
    text = values.fillna("").astype(str).str.strip().str.lower()
    bad = ~text.isin(TRUE_VALUES | FALSE_VALUES)
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy())[:5] + 2).tolist()  # +2: header line, 1-based
        examples = ", ".join(f"line {r}: {values.iloc[r - 2]!r}" for r in rows)
        raise LookalikeError(
            f"{path}: column {column!r} must hold 1/0, true/false or yes/no; {int(bad.sum())} row(s) do not ({examples})"
        )
    return text.isin(TRUE_VALUES).to_numpy()


def read_input(path: Path, id_column: str, seed_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    if not path.is_file():
        raise LookalikeError(f"input file not found: {path}")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LookalikeError(f"{path}: not a readable CSV ({exc})") from exc
    for role, column in (("seed", seed_column), ("id", id_column)):
        if column not in frame.columns:
            raise LookalikeError(
                f"{path}: no {role} column {column!r}; the columns are: {', '.join(map(str, frame.columns))}"
            )
    if frame[id_column].isna().any():
        row = int(np.flatnonzero(frame[id_column].isna().to_numpy())[0]) + 2
        raise LookalikeError(f"{path}: line {row}: the id column {id_column!r} is empty")
    if frame[id_column].duplicated().any():
        dup = frame.loc[frame[id_column].duplicated(), id_column].iloc[0]
        raise LookalikeError(f"{path}: id {dup!r} appears more than once in column {id_column!r}")
    return frame, parse_seed_flags(frame[seed_column], path, seed_column)


def score_csv(path: Path, id_column: str, seed_column: str, settings: ModelSettings | None = None) -> CsvScoring:
    """Fit on the CSV's seed rows against the others and rank the others (default settings: the ``model`` of
    config/lookalike.yaml, the warehouse's own)."""
    if settings is None:
        from mos_pipelines.configuration import load_lookalike

        settings = load_lookalike().model
    frame, is_seed = read_input(path, id_column, seed_column)
    spec = infer_features(frame, exclude=(id_column, seed_column), max_category_share=settings.max_category_share)
    fit = fit_lookalike(frame, is_seed, spec, settings, audience=f"{path.name}:{seed_column}")
    population = frame.loc[~is_seed]
    ranked = rank_population(population[id_column], fit.score(population)).rename(columns={"id": id_column})
    return CsvScoring(fit=fit, scores=ranked, spec=spec, rows=len(frame))
