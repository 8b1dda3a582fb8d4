"""Offline policy evaluation: replay the batched Thompson bandit on a logged randomized experiment.

A log is a CSV with one row per exposure, in time order: the arm shown and the reward observed
(and, optionally, the probability with which the logging policy chose that arm).

- Uniform logs (no propensity column): the replay method (Li et al., 2011). For every logged row
  the policy draws an arm from its current shares; when it matches the logged arm, the row is what
  the policy would have seen: its reward counts and the policy learns from it. Under a uniformly
  random log this is an unbiased estimate of the policy's average reward.
- Logs with propensities: the value of the policy's shares π in each batch is estimated by inverse
  propensity scoring over all rows (IPS: mean of π(a)/p · r; self-normalised IPS: Σ w r / Σ w), and
  the policy learns from a rejection sample of the rows (kept with probability π(a)/(M p), M the
  batch's largest π/p), which is distributed as the policy's own traffic.

With ``context_columns`` (per-unit features in the log) the contextual policy (``contextual.py``) is replayed
the same way on the same rows, beside the non-contextual bandit: its shares differ per row, so a row matches
(replay) or is weighted (IPS) by the share its own features get.

The policy updates every ``batch_size`` rows with the same floor, change cap and minimum-exposure
rule as the warehouse bandit. Rows of the holdout arm never reach the policy; they are reported as
the baseline the treated population is compared with. Rewards in {0, 1} use the Beta–Bernoulli
bandit; any other non-negative rewards the revenue-aware one (successes = reward > 0).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mos_pipelines.configuration.experiments import BanditSettings
from mos_pipelines.experiments import bandit
from mos_pipelines.experiments.ab_statistics import normal_interval, rate_interval
from mos_pipelines.experiments.contextual import (
    MISSING,
    ContextualPolicy,
    FeatureEncoder,
    is_missing,
    looks_numeric,
    numeric_values,
)

Z95 = 1.959963984540054


class LogError(ValueError):
    """The log cannot be evaluated; the message names the file, and the row and field when it is one row."""


@dataclass(frozen=True)
class Log:
    path: Path
    arms: np.ndarray  # str per row
    rewards: np.ndarray  # float per row
    propensities: np.ndarray | None
    lines: np.ndarray  # line of each row in the file (header = line 1)
    features: pd.DataFrame | None = None  # the context columns, as text (missing values as read)


def read_log(
    path: Path,
    arm_column: str,
    reward_column: str,
    propensity_column: str | None = None,
    context_columns: Sequence[str] | None = None,
) -> Log:
    """Read and validate a log: every bad value raises ``LogError`` naming the file, row, line and field.

    A context column is numeric when ≥ 90 % of its present values are numbers; then any other present value
    is an error (a typo, ``inf``); an empty, NA, N/A, NaN, null or none value is missing (a level of its own).
    """
    path = Path(path)
    context = [c.strip() for c in context_columns or () if c.strip()]
    if context_columns is not None and not context:
        raise LogError(f"{path}: --context-columns names no column (expected a comma-separated list)")
    used = {arm_column: "--arm-column", reward_column: "--reward-column"}
    if propensity_column:
        used[propensity_column] = "--propensity-column"
    for column in context:
        if column in used:
            raise LogError(
                f"{path}: column {column!r} is both a context column and the {used[column]}; a policy cannot "
                "see the arm, the reward or the logging probability before it chooses"
            )
    if len(set(context)) != len(context):
        raise LogError(f"{path}: --context-columns lists a column twice ({', '.join(context)})")
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise LogError(f"{path}: cannot open the log ({exc.strerror or exc})") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise LogError(
                f"{path}: the file is empty (expected a CSV header with {arm_column!r} and {reward_column!r})"
            ) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise LogError(f"{path}: not a readable UTF-8 CSV file ({exc})") from exc
        header = [h.strip() for h in header]
        wanted = {"--arm-column": arm_column, "--reward-column": reward_column}
        if propensity_column:
            wanted["--propensity-column"] = propensity_column
        for option, column in wanted.items():
            if column not in header:
                raise LogError(
                    f"{path}: column {column!r} ({option}) is not in the file; its columns are: {', '.join(header)}"
                )
        for column in context:
            if column not in header:
                raise LogError(
                    f"{path}: context column {column!r} (--context-columns) is not in the file; its columns are: "
                    f"{', '.join(header)}"
                )
        idx = {name: header.index(col) for name, col in wanted.items()}
        context_idx = [header.index(c) for c in context]
        arms, rewards, props, lines = [], [], [], []
        values: list[list[str]] = []
        row_number = 0
        try:
            for record in reader:
                if not record or all(not v.strip() for v in record):
                    continue
                row_number += 1
                line = reader.line_num
                where = f"{path}: row {row_number} (line {line})"
                if len(record) != len(header):
                    raise LogError(f"{where}: has {len(record)} fields, the header has {len(header)}")
                arm = record[idx["--arm-column"]].strip()
                if not arm:
                    raise LogError(f"{where}: field {arm_column!r} is empty (every row needs an arm)")
                reward = _number(where, reward_column, record[idx["--reward-column"]])
                if reward < 0:
                    raise LogError(f"{where}: field {reward_column!r} is {reward!r}; rewards must be >= 0")
                if propensity_column:
                    p = _number(where, propensity_column, record[idx["--propensity-column"]])
                    if not 0 < p <= 1:
                        raise LogError(
                            f"{where}: field {propensity_column!r} is {p!r}; a propensity is a probability in (0, 1]"
                        )
                    props.append(p)
                arms.append(arm)
                rewards.append(reward)
                lines.append(line)
                if context_idx:
                    values.append([record[i] for i in context_idx])
        except (UnicodeDecodeError, csv.Error) as exc:
            raise LogError(f"{path}: line {reader.line_num}: not readable CSV ({exc})") from exc
    if not arms:
        raise LogError(f"{path}: the log has a header but no rows")
    features = None
    if context:
        features = pd.DataFrame(values, columns=context, dtype=object)
        for column in context:
            _check_context(path, column, features[column], lines)
    return Log(
        path,
        np.asarray(arms, dtype=object),
        np.asarray(rewards, dtype=float),
        np.asarray(props, dtype=float) if propensity_column else None,
        np.asarray(lines),
        features,
    )


def _check_context(path: Path, column: str, values: pd.Series, lines: list[int]) -> None:
    """A numeric context column must hold numbers (or nothing) in every row."""
    if not looks_numeric(values):
        return
    _, parsed = numeric_values(values)
    bad = np.flatnonzero(~parsed & ~is_missing(values))
    if len(bad):
        row = int(bad[0])
        share = float(parsed.sum()) / max(1, int((~is_missing(values)).sum()))
        raise LogError(
            f"{path}: row {row + 1} (line {lines[row]}): field {column!r} is {values.iloc[row]!r}, not a finite "
            f"number ({share:.0%} of the column's values are numbers, so it is read as numeric; leave the field "
            f"empty for a missing value){'' if len(bad) == 1 else f'; {len(bad) - 1} more row(s) like it'}"
        )


def _number(where: str, column: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise LogError(f"{where}: field {column!r} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise LogError(f"{where}: field {column!r} is {text!r}, not a finite number")
    return value


@dataclass(frozen=True)
class Estimate:
    mean: float
    lower: float
    upper: float
    n: int


@dataclass
class Evaluation:
    method: str  # replay | ips
    binary: bool
    arms: list[str]
    rows: int
    arm_estimates: dict[str, Estimate]
    policy: Estimate  # replay mean, or SNIPS
    policy_ips: Estimate | None
    uniform: Estimate
    best_arm: str
    holdout_arm: str | None
    holdout: Estimate | None
    lift_vs_holdout: Estimate | None  # policy − holdout, absolute
    final_shares: dict[str, float]
    final_posterior_mean: dict[str, float]
    final_reasons: dict[str, str]
    batches: int
    learned_rows: int  # rows the policy learned from (replay matches / rejection sample)
    warnings: list[str] = field(default_factory=list)


def evaluate_log(
    log: Log, settings: BanditSettings, holdout_arm: str | None = None, batch_size: int = 1000, seed: int | None = None
) -> Evaluation:
    """Replay (or IPS-evaluate) the batched Thompson bandit on ``log``."""
    if batch_size < 1:
        raise LogError(f"--batch-size must be >= 1, got {batch_size}")
    arms_all = sorted(set(log.arms.tolist()))
    if holdout_arm is not None and holdout_arm not in arms_all:
        raise LogError(
            f"{log.path}: --holdout-arm {holdout_arm!r} does not occur in the log (arms: {', '.join(arms_all)})"
        )
    arms = [a for a in arms_all if a != holdout_arm]
    if len(arms) < 2:
        raise LogError(f"{log.path}: the log has {len(arms)} arm(s) besides the holdout; a policy needs at least two")
    treated = log.arms != holdout_arm if holdout_arm is not None else np.ones(len(log.arms), dtype=bool)
    arm_idx = pd.Series(range(len(arms)), index=arms)
    a = arm_idx.reindex(log.arms[treated]).to_numpy(dtype=np.int64)
    r = log.rewards[treated]
    p = log.propensities[treated] if log.propensities is not None else None
    binary = bool(np.isin(log.rewards, (0.0, 1.0)).all())
    k = len(arms)
    generator = bandit.seeded_rng(settings.random_seed if seed is None else seed, "offline")
    warnings: list[str] = []
    if p is None:
        counts = np.bincount(a, minlength=k)
        expected = len(a) / k
        chi2 = ((counts - expected) ** 2 / expected).sum()
        from scipy.stats import chi2 as chi2_dist

        if chi2_dist.sf(chi2, k - 1) < 0.001:
            warnings.append(
                f"arm counts {dict(zip(arms, counts.tolist()))} are far from uniform: replay assumes a "
                "uniformly random log; pass --propensity-column for IPS"
            )

    shares = np.full(k, 1.0 / k)
    reasons = [bandit.MIN_EXPOSURES] * k
    seen_n = np.zeros(k)
    seen_s = np.zeros(k)
    seen_v = np.zeros(k)
    learned = 0
    replay_rewards: list[np.ndarray] = []
    ips_terms: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    batches = 0
    post = None
    for start in range(0, len(a), batch_size):
        batches += 1
        ba, br = a[start : start + batch_size], r[start : start + batch_size]
        if p is None:
            choice = _draw(shares, len(ba), generator)
            keep = choice == ba
            replay_rewards.append(br[keep])
        else:
            bp = p[start : start + batch_size]
            w = shares[ba] / bp
            ips_terms.append(w * br)
            weights.append(w)
            keep = generator.random(len(ba)) < w / w.max()
        learned += int(keep.sum())
        np.add.at(seen_n, ba[keep], 1)
        np.add.at(seen_s, ba[keep], (br[keep] > 0).astype(float) if not binary else br[keep])
        np.add.at(seen_v, ba[keep], br[keep])
        shares, reasons, post = _update(seen_n, seen_s, seen_v, shares, binary, settings, generator)

    # per-arm estimates (every treated row: the log is randomized)
    arm_estimates = {}
    for i, arm in enumerate(arms):
        rows = a == i
        arm_estimates[arm] = _estimate(r[rows], binary, None if p is None else p[rows])
    if p is None:
        matched = np.concatenate(replay_rewards) if replay_rewards else np.zeros(0)
        policy = _estimate(matched, binary, None)
        policy_ips = None
        uniform = _estimate(r, binary, None)
        method = "replay"
    else:
        # the policy never chooses the holdout: holdout rows are terms of 0 in the IPS mean over all rows
        terms = np.concatenate(ips_terms + [np.zeros(int((~treated).sum()))])
        w_all = np.concatenate(weights)
        mean, low, high = normal_interval(terms)
        policy_ips = Estimate(mean, low, high, len(terms))
        policy = _snips(r, w_all)
        uniform = _snips(r, (1.0 / k) / p)
        method = "ips"
    best_arm = max(arms, key=lambda x: arm_estimates[x].mean)
    holdout = lift = None
    if holdout_arm is not None:
        hr = log.rewards[~treated]
        hp = None if log.propensities is None else log.propensities[~treated]
        holdout = _estimate(hr, binary, hp)
        diff = policy.mean - holdout.mean
        half = math.hypot((policy.upper - policy.lower) / 2, (holdout.upper - holdout.lower) / 2)
        lift = Estimate(diff, diff - half, diff + half, policy.n + holdout.n)
    return Evaluation(
        method=method,
        binary=binary,
        arms=arms,
        rows=len(log.arms),
        arm_estimates=arm_estimates,
        policy=policy,
        policy_ips=policy_ips,
        uniform=uniform,
        best_arm=best_arm,
        holdout_arm=holdout_arm,
        holdout=holdout,
        lift_vs_holdout=lift,
        final_shares=dict(zip(arms, shares.tolist())),
        final_posterior_mean=dict(zip(arms, (post.mean if post is not None else np.full(k, np.nan)).tolist())),
        final_reasons=dict(zip(arms, reasons)),
        batches=batches,
        learned_rows=learned,
        warnings=warnings,
    )


def _draw(shares: np.ndarray, n: int, generator: np.random.Generator) -> np.ndarray:
    cumulative = np.cumsum(shares)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, generator.random(n), side="right")


def _update(
    n: np.ndarray,
    s: np.ndarray,
    v: np.ndarray,
    shares: np.ndarray,
    binary: bool,
    settings: BanditSettings,
    generator: np.random.Generator,
):
    if binary:
        post = bandit.bernoulli_posterior(s, n, settings.prior_alpha, settings.prior_beta, settings.draws, generator)
    else:
        post = bandit.value_posterior(s, n, v, settings.prior_alpha, settings.prior_beta, settings.draws, generator)
    if n.min() < settings.min_exposures:
        return shares, [bandit.MIN_EXPOSURES] * len(n), post
    result = bandit.constrain(post.prob_best, shares, settings.floor, settings.max_daily_change)
    return result.shares, result.reasons, post


def _estimate(values: np.ndarray, binary: bool, propensities: np.ndarray | None) -> Estimate:
    if propensities is not None and len(values):
        return _snips(values, 1.0 / propensities)
    if len(values) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if binary:
        low, high = rate_interval(int(values.sum()), len(values))
        return Estimate(float(values.mean()), low, high, len(values))
    mean, low, high = normal_interval(values)
    return Estimate(mean, low, high, len(values))


def _snips(rewards: np.ndarray, w: np.ndarray) -> Estimate:
    """Self-normalised IPS with a delta-method interval."""
    total = w.sum()
    mean = float((w * rewards).sum() / total)
    se = math.sqrt(float((w**2 * (rewards - mean) ** 2).sum())) / float(total)
    return Estimate(mean, mean - Z95 * se, mean + Z95 * se, len(rewards))


@dataclass
class ContextualEvaluation:
    """The contextual policy replayed on the same log, beside the non-contextual evaluation."""

    base: Evaluation  # non-contextual bandit, uniform, best single arm, holdout
    context_columns: list[str]
    policy: Estimate  # replay mean, or SNIPS
    policy_ips: Estimate | None
    vs_best_arm: Estimate  # contextual − best single arm, absolute
    vs_bandit: Estimate  # contextual − non-contextual bandit, absolute
    learned_rows: int
    final_shares: dict[str, float]  # average over the log's treated rows
    final_reason: str
    context_weight: float  # P(the features matter): the contextual model's weight against the one without features
    features: list[str]  # design columns of the encoder
    coefficients: pd.DataFrame  # posterior mean log-odds, design column × arm
    policy_state: dict[str, object]  # ContextualPolicy.to_dict() at the end
    warnings: list[str] = field(default_factory=list)  # context columns that carry nothing the policy can use


def evaluate_contextual(
    log: Log, settings: BanditSettings, holdout_arm: str | None = None, batch_size: int = 1000, seed: int | None = None
) -> ContextualEvaluation:
    """Replay the contextual policy on ``log`` (which has context columns) and the non-contextual bandit beside it."""
    if log.features is None:
        raise LogError(f"{log.path}: no context columns were read (pass --context-columns)")
    base = evaluate_log(log, settings, holdout_arm=holdout_arm, batch_size=batch_size, seed=seed)
    if not base.binary:
        row = int(np.flatnonzero(~np.isin(log.rewards, (0.0, 1.0)))[0])
        raise LogError(
            f"{log.path}: row {row + 1} (line {log.lines[row]}): the reward is {float(log.rewards[row])!r}; the contextual "
            "policy learns 0/1 rewards (clicks, conversions); evaluate a value reward without --context-columns"
        )
    arms = base.arms
    treated = log.arms != holdout_arm if holdout_arm is not None else np.ones(len(log.arms), dtype=bool)
    a = pd.Series(range(len(arms)), index=arms).reindex(log.arms[treated]).to_numpy(dtype=np.int64)
    r = log.rewards[treated]
    p = log.propensities[treated] if log.propensities is not None else None
    features = log.features[treated].reset_index(drop=True)
    encoder = FeatureEncoder.fit(features)  # levels and scales from the contexts only, never the rewards
    warnings = []
    for column in features.columns:
        if encoder.categorical.get(column) == []:
            warnings.append(
                f"{log.path}: context column {column!r} has no value in 5 or more rows (an id?); the policy ignores it"
            )
        elif column in encoder.categorical and encoder.categorical[column] == [MISSING]:
            warnings.append(f"{log.path}: context column {column!r} is empty in every row; the policy ignores it")
    policy = ContextualPolicy.create(arms, encoder, settings)
    x = encoder.transform(features)  # encoded once; the policy scores rows of it
    generator = bandit.seeded_rng(settings.random_seed if seed is None else seed, "offline", "contextual")
    names = np.asarray(arms, dtype=object)
    matched: list[np.ndarray] = []
    ips_terms: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    learned = 0
    for start in range(0, len(a), batch_size):
        batch = x[start : start + batch_size]
        ba, br = a[start : start + batch_size], r[start : start + batch_size]
        shares = policy.shares_matrix(batch)
        if p is None:
            cumulative = np.cumsum(shares, axis=1)
            cumulative[:, -1] = 1.0
            choice = np.minimum((generator.random(len(ba))[:, None] >= cumulative).sum(axis=1), len(arms) - 1)
            keep = choice == ba
            matched.append(br[keep])
        else:
            w = shares[np.arange(len(ba)), ba] / p[start : start + batch_size]
            ips_terms.append(w * br)
            weights.append(w)
            keep = generator.random(len(ba)) < w / w.max()
        learned += int(keep.sum())
        policy.update(batch[keep], names[ba[keep]], br[keep], population=batch, previous_shares=shares)
    if p is None:
        estimate = _estimate(np.concatenate(matched) if matched else np.zeros(0), True, None)
        plain = None
    else:
        terms = np.concatenate(ips_terms + [np.zeros(int((~treated).sum()))])
        mean, low, high = normal_interval(terms)
        plain = Estimate(mean, low, high, len(terms))
        estimate = _snips(r, np.concatenate(weights))
    final = policy.population_shares(x)
    return ContextualEvaluation(
        base=base,
        context_columns=list(log.features.columns),
        policy=estimate,
        policy_ips=plain,
        vs_best_arm=_difference(estimate, base.arm_estimates[base.best_arm]),
        vs_bandit=_difference(estimate, base.policy),
        learned_rows=learned,
        final_shares=dict(zip(arms, final.tolist())),
        final_reason=policy.reason,
        context_weight=policy.context_weight,
        features=encoder.names,
        coefficients=policy.coefficients(),
        policy_state=policy.to_dict(),
        warnings=warnings,
    )


def _difference(first: Estimate, second: Estimate) -> Estimate:
    """first − second with a normal interval from the two half-widths (independent estimates)."""
    diff = first.mean - second.mean
    half = math.hypot((first.upper - first.lower) / 2, (second.upper - second.lower) / 2)
    return Estimate(diff, diff - half, diff + half, first.n + second.n)
