"""P(response | action, person): a Beta posterior per action and per cell of person attributes.

Each action starts from its prior (``response.prior_rate`` worth ``prior_weight`` observations). The action's own
record (every time it was taken, and whether a counted conversion followed within the window) updates it; each cell
(e.g. lifecycle stage × ICP tier) then starts from its action's posterior mean, worth the same prior weight, and is
updated by the cell's own record. A cell never seen gets its action's estimate; an action never taken, its prior.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mos_pipelines.configuration.policy import DecisioningSettings

MISSING = "(missing)"
NO_ACTION = "no_action"


RECENT_CONTACTS = "recent_contacts"


def recent_contacts(contacts: pd.DataFrame, customer_ids: pd.Series, at: datetime.datetime, days: int = 7) -> pd.Series:
    """How often each person was contacted in the ``days`` before ``at`` (counted channels), as a band: ``0``,
    ``1``, ``2+`` (a cell attribute: the same action is worth less to someone contacted yesterday)."""
    if len(contacts):
        when = pd.to_datetime(contacts["contacted_at"])
        since = pd.Timestamp(at) - pd.Timedelta(days=days)
        recent = contacts[(when > since) & (when <= pd.Timestamp(at))]
        counts = recent.groupby(recent["customer_id"].astype(str)).size()
    else:
        counts = pd.Series(dtype=int)
    n = customer_ids.astype(str).map(counts).fillna(0).astype(int)
    return n.map(lambda k: "0" if k == 0 else "1" if k == 1 else "2+")


def cell_key(row: dict, cells: tuple[str, ...]) -> str:
    """A person's cell as text, e.g. ``lifecycle_stage=lead|tier=B`` (a missing value is its own level)."""
    parts = []
    for column in cells:
        value = row.get(column)
        text = MISSING if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        parts.append(f"{column}={text}")
    return "|".join(parts) or "all"


def cell_keys(frame: pd.DataFrame, cells: tuple[str, ...]) -> pd.Series:
    if not cells:
        return pd.Series("all", index=frame.index)
    parts = []
    for column in cells:
        values = frame[column] if column in frame else pd.Series(None, index=frame.index, dtype=object)
        text = values.astype(object).where(values.notna(), MISSING).astype(str)
        parts.append(column + "=" + text)
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out


@dataclass(frozen=True)
class Estimates:
    """Posterior (alpha, beta) per action and per (action, cell)."""

    actions: dict[str, tuple[float, float, int, int]]  # action -> alpha, beta, taken, responses
    cells: dict[tuple[str, str], tuple[float, float, int, int]]  # (action, cell) -> alpha, beta, taken, responses
    cell_columns: tuple[str, ...]
    contextual: Any = None  # experiments.contextual.ContextualPolicy when learning.model is contextual
    prior_weights: dict[str, float] = field(default_factory=dict)
    _cache: dict[tuple[str, str], tuple[float, float, str]] = field(default_factory=dict, compare=False)

    def posterior(self, action: str, cell: str) -> tuple[float, float, str]:
        """(alpha, beta, where it comes from) for a person of ``cell``."""
        if self.contextual is not None and action in self.contextual.arms:
            key = (action, cell)
            if key not in self._cache:
                self._cache[key] = self._contextual(action, cell)
            return self._cache[key]
        if (action, cell) in self.cells:
            a, b, n, r = self.cells[(action, cell)]
            return a, b, f"cell {cell}: {r} of {n} responded, shrunk to the action's rate"
        a, b, n, r = self.actions[action]
        return a, b, f"action: {r} of {n} responded, with its prior" if n else "the action's prior (never taken)"

    def _contextual(self, action: str, cell: str) -> tuple[float, float, str]:
        """P from the logistic model for the cell's attributes; its weight: the cell's record plus the prior's."""
        features = pd.DataFrame([parse_cell(cell, self.cell_columns)])
        p = float(self.contextual.probabilities(features)[action].iloc[0])
        p = min(max(p, 1e-6), 1 - 1e-6)
        n = self.cells.get((action, cell), (0.0, 0.0, 0, 0))[2] + self.prior_weights.get(action, 1.0)
        w = self.contextual.context_weight
        return p * n, (1 - p) * n, f"contextual model (features weigh {w:.2f}): P {p:.4g}, worth {n:g} observations"

    def version(self) -> str:
        payload = json.dumps(
            [sorted((k, v) for k, v in self.actions.items()), sorted((list(k), v) for k, v in self.cells.items())],
            default=str,
        )
        if self.contextual is not None:
            payload += json.dumps(self.contextual.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def table(self) -> pd.DataFrame:
        rows = [
            {"action": action, "cell": "(action)", "alpha": a, "beta": b, "taken": n, "responses": r}
            for action, (a, b, n, r) in self.actions.items()
        ]
        rows += [
            {"action": action, "cell": cell, "alpha": a, "beta": b, "taken": n, "responses": r}
            for (action, cell), (a, b, n, r) in self.cells.items()
        ]
        frame = pd.DataFrame(rows, columns=["action", "cell", "alpha", "beta", "taken", "responses"])
        frame["mean"] = frame["alpha"] / (frame["alpha"] + frame["beta"])
        return frame


def estimate(history: pd.DataFrame, settings: DecisioningSettings) -> Estimates:
    """``history``: one row per action taken (``action``, ``responded`` 0/1, and ``cell``, or the cell columns, as
    the person was when the action was decided)."""
    cells = settings.learning.cells
    actions: dict[str, tuple[float, float, int, int]] = {}
    by_cell: dict[tuple[str, str], tuple[float, float, int, int]] = {}
    taken = history[history["action"].isin([*settings.actions, NO_ACTION])] if len(history) else history
    if "cell" in taken:  # as stored with the decision
        keys = taken["cell"].astype(str)
    else:
        keys = cell_keys(taken, cells) if len(taken) else pd.Series(dtype=str)
    priors = {name: action.response for name, action in settings.actions.items()}
    priors[NO_ACTION] = settings.learning.baseline
    for name, prior in priors.items():
        rows = taken[taken["action"] == name] if len(taken) else taken
        n = len(rows)
        r = int(rows["responded"].sum()) if n else 0
        a = prior.prior_rate * prior.prior_weight + r
        b = (1 - prior.prior_rate) * prior.prior_weight + (n - r)
        actions[name] = (a, b, n, r)
        if n and cells:
            mean = a / (a + b)
            grouped = rows.assign(_cell=keys.loc[rows.index]).groupby("_cell")["responded"].agg(["sum", "count"])
            for cell, g in grouped.iterrows():
                cn, cr = int(g["count"]), int(g["sum"])
                by_cell[(name, str(cell))] = (
                    mean * prior.prior_weight + cr,
                    (1 - mean) * prior.prior_weight + (cn - cr),
                    cn,
                    cr,
                )
    weights = {name: prior.prior_weight for name, prior in priors.items()}
    if settings.learning.model == "contextual" and len(taken) and cells:
        return Estimates(actions, by_cell, cells, _contextual_policy(taken, keys, list(priors), cells), weights)
    return Estimates(actions, by_cell, cells, None, weights)


def parse_cell(cell: str, columns: tuple[str, ...]) -> dict[str, str | None]:
    """``lifecycle_stage=lead|tier=B`` back to its attributes (a missing value as None)."""
    values: dict[str, str | None] = dict.fromkeys(columns)
    for part in str(cell).split("|"):
        name, _, value = part.partition("=")
        if name in values:
            values[name] = None if value == MISSING else value
    return values


def _contextual_policy(taken: pd.DataFrame, keys: pd.Series, arms: list[str], cells: tuple[str, ...]) -> Any:
    from mos_pipelines.configuration.experiments import BanditSettings
    from mos_pipelines.experiments.contextual import ContextualPolicy

    settings = BanditSettings(
        segment="none",
        prior_alpha=1.0,
        prior_beta=99.0,
        pooling_exposures=0.0,
        floor=0.0,
        max_daily_change=1.0,
        min_exposures=0,
        draws=100,
        random_seed=0,
        conversion_window_days=1,
    )
    features = pd.DataFrame([parse_cell(k, cells) for k in keys], columns=list(cells)).astype(object)
    return ContextualPolicy.fit(
        features,
        taken["action"].astype(str),
        taken["responded"].astype(float),
        settings,
        categorical=list(cells),
        all_arms=arms,
    )
