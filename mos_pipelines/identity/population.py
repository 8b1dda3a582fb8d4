"""The match settings of one run: ``config/identity.yaml`` (``configuration.identity.IdentitySettings``) resolved
against the columns the records fill.

A column filled on fewer records than ``min_populated_share`` is neither compared nor blocked on: a level reading
it is dropped, a comparison left without levels is dropped, and so are the blocking and training rules that read
it. What was left out, and why, goes to the model card.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from mos_pipelines.configuration.identity import COLUMN, KEY_PREFIX, BlockingRule, IdentitySettings, rule_keys
from mos_pipelines.identity import comparisons as cmp
from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.matching import MatchSettings


@dataclass(frozen=True)
class ResolvedSettings:
    """The match settings for one input and what the population check left out."""

    settings: MatchSettings  # derived_columns: the file's, then blocking keys written as SQL expressions
    derived_columns: tuple[tuple[str, str], ...]  # the file's derived columns (added before shares are measured)
    shares: dict[str, float] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()

    @property
    def skip_reason(self) -> str | None:
        """Why nothing can be matched (no comparison or no blocking rule left), else None."""
        if not self.settings.comparisons:
            return "no comparison has a populated column"
        if not self.settings.blocking_rules:
            return "no blocking rule has only populated columns"
        return None


def cluster_settings(config: IdentitySettings) -> ClusterSettings:
    return ClusterSettings(**config.clustering.model_dump())


def columns_of(config: IdentitySettings, expression: str, known: set[str]) -> set[str]:
    """Input or derived columns an expression reads (a derived column also reads what its SQL reads)."""
    found = {c for c in known if re.search(rf"\b{re.escape(c)}\b", expression)}
    for name in list(found):
        if name in config.derived_columns:
            found |= columns_of(config, config.derived_columns[name], known - {name})
    return found


def resolve(config: IdentitySettings, shares: dict[str, float]) -> ResolvedSettings:
    """The settings for records whose columns are filled on ``shares`` (column → share of records with a value;
    derived columns included), and what was left out and why."""
    known = set(shares) | set(config.derived_columns)
    dropped: list[str] = []

    def populated(column: str) -> bool:
        return shares.get(column, 0.0) >= config.min_populated_share

    def describe(columns: list[str] | set[str]) -> str:
        return ", ".join(f"{c} {shares.get(c, 0.0):.0%}" for c in sorted(columns) if not populated(c))

    comparisons = []
    tf_min_records: dict[str, int] = {}
    for c in config.comparisons:
        specs = []
        for level in c.levels:
            columns = level.read_columns(c.column)
            if not all(populated(column) for column in columns):
                dropped.append(f"comparison {c.name}, level {level.label or level.kind}: {describe(columns)} filled")
                continue
            tf = level.tf_column(c.column)
            value = {
                "jaro_winkler": level.at_least,
                "jaccard": level.at_least,
                "prefix": level.length,
                "sql": level.sql,
            }.get(level.kind, level.at_most)
            tf = tf if tf and populated(tf) else None
            if tf and level.term_frequency_min_records:
                tf_min_records[tf] = max(tf_min_records.get(tf, 0), level.term_frequency_min_records)
            specs.append(
                {"kind": level.kind, "columns": columns, "value": value, "label": level.label, "tf_column": tf}
            )
        if specs:
            comparisons.append(cmp.build(c.name, specs))
        else:
            dropped.append(f"comparison {c.name}: no level left")

    expression_keys: dict[str, str] = {}
    caps: dict[tuple[str, ...], int] = {}
    conditions: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {}

    def rules(key: str) -> list[tuple[str, ...]]:
        kept = []
        for spec in getattr(config, key):
            rule = rule_keys(spec)
            columns = set().union(*(columns_of(config, e, known) | ({e} if COLUMN.match(e) else set()) for e in rule))
            if not columns or not all(populated(column) for column in columns):
                dropped.append(
                    f"{key[:-1].replace('_', ' ')} [{', '.join(rule)}]: "
                    f"{describe(columns) + ' filled' if columns else 'reads no known column'}"
                )
                continue
            keys = []
            for expression in rule:
                if COLUMN.match(expression):
                    keys.append(expression)
                else:  # an inline SQL expression becomes a hidden derived column
                    name = KEY_PREFIX + hashlib.sha1(expression.encode()).hexdigest()[:8]
                    expression_keys[name] = expression
                    keys.append(name)
            kept.append(tuple(keys))
            if isinstance(spec, BlockingRule):
                if spec.max_block_size is not None:
                    caps[tuple(keys)] = spec.max_block_size
                unless = tuple(c for c in spec.unless_both_have if populated(c))
                if len(unless) < len(spec.unless_both_have):
                    dropped.append(
                        f"{key[:-1].replace('_', ' ')} [{', '.join(rule)}], unless_both_have: "
                        f"{describe(set(spec.unless_both_have) - set(unless))} filled"
                        + ("" if unless else " (the rule pairs every block)")
                    )
                if unless:
                    conditions[tuple(keys)] = (unless, spec.in_blocks_over or 0)
        return kept

    blocking = rules("blocking_rules")
    training = rules("training_rules")
    derived = tuple(config.derived_columns.items())
    return ResolvedSettings(
        settings=MatchSettings(
            comparisons=tuple(comparisons),
            blocking_rules=tuple(dict.fromkeys(blocking)),
            training_rules=tuple(dict.fromkeys(training)),
            derived_columns=(*derived, *expression_keys.items()),
            max_block_size=config.max_block_size,
            rule_block_sizes=tuple(caps.items()),
            rule_unless_both_have=tuple(conditions.items()),
            u_sample_pairs=config.u_sample_pairs,
            tf_min_records=tuple(sorted(tf_min_records.items())),
        ),
        derived_columns=derived,
        shares=dict(shares),
        dropped=tuple(dropped),
    )
