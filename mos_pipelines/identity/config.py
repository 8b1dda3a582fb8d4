"""``config/identity.yaml``: what probabilistic CRM matching compares, blocks on and trains on.

The file is the matcher's settings as data, the way Splink users write a settings dictionary:
derived columns (SQL over one record), comparisons made of levels, blocking rules and EM training
rules. Validated with pydantic (unknown keys are errors); every problem raises ``IdentityConfigError``
naming the file, the key, what was expected and what was found. ``MOS_IDENTITY_CONFIG`` points at
another file.

The settings a run uses are derived from the records at hand (:meth:`IdentityConfig.resolve`): a column
filled on fewer records than ``min_populated_share`` is neither compared nor blocked on, so a level reading
it is dropped, a comparison left without levels is dropped, and so are the blocking and training rules
that read it. Nothing in the file is a weight: m, u and λ are estimated by EM on the data every run.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mos_pipelines.configuration.errors import ConfigError
from mos_pipelines.configuration.loader import read_document
from mos_pipelines.identity import comparisons as cmp
from mos_pipelines.identity.clustering import ClusterSettings
from mos_pipelines.identity.matching import MatchSettings
from mos_pipelines.settings import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "config" / "identity.yaml"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SIMILARITY_KINDS = ("jaro_winkler", "jaccard")  # take at_least (0..1]
DISTANCE_KINDS = ("levenshtein", "damerau_levenshtein", "within_years")  # take at_most (whole number)
KEY_PREFIX = "_key_"  # hidden derived columns for blocking keys written as SQL expressions


class IdentityConfigError(ValueError):
    """The identity config is unreadable or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Strict):
    """One level: its kind and the options of that kind (see ``comparisons.LEVEL_KINDS``)."""

    kind: Literal[cmp.LEVEL_KINDS]  # type: ignore[valid-type]
    column: str | None = None
    columns: list[str] | None = None
    at_least: float | None = Field(None, gt=0, le=1)
    at_most: int | None = Field(None, ge=0)
    length: int | None = Field(None, ge=1)
    sql: str | None = None
    label: str | None = None
    term_frequency: bool | str = False

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        """``exact`` or ``{jaro_winkler: {at_least: 0.9}}`` → ``{kind: ..., **options}``."""
        if isinstance(data, str):
            return {"kind": data}
        if isinstance(data, dict) and "kind" not in data:
            if len(data) != 1:
                raise ValueError(
                    f"a level is one kind with its options, e.g. {{jaro_winkler: {{at_least: 0.9}}}}; "
                    f"got keys {sorted(data)}"
                )
            ((kind, options),) = data.items()
            if options is None:
                options = {}
            if not isinstance(options, dict):
                raise ValueError(f"the options of level {kind!r} must be a mapping, got {options!r}")
            return {"kind": kind, **options}
        return data

    @model_validator(mode="after")
    def _options(self) -> LevelSpec:
        if self.column is not None and self.columns is not None:
            raise ValueError("give `column` or `columns`, not both")
        if self.kind in SIMILARITY_KINDS and self.at_least is None:
            raise ValueError(f"a {self.kind} level needs `at_least` (a similarity in (0, 1])")
        if self.kind in DISTANCE_KINDS and self.at_most is None:
            raise ValueError(f"a {self.kind} level needs `at_most` (a whole number)")
        if self.kind == "prefix" and self.length is None:
            raise ValueError("a prefix level needs `length` (characters)")
        if self.kind == "sql" and not (self.sql and self.columns):
            raise ValueError(
                "a sql level needs `sql` (a condition over l.<column> and r.<column>) and `columns` (those it reads)"
            )
        if self.term_frequency and self.kind not in ("exact", "sql"):
            raise ValueError(
                "term_frequency applies to exact levels (and sql levels that imply equality on "
                "the column named) only: agreement on one value"
            )
        if self.kind == "sql" and self.term_frequency is True:
            raise ValueError("a sql level names its term_frequency column (one its condition makes equal)")
        return self

    def read_columns(self, default: str | None) -> list[str]:
        if self.columns:
            return list(self.columns)
        if self.column:
            return [self.column]
        return [default] if default else []


class ComparisonSpec(_Strict):
    """A comparison: its levels, most similar first; a pair matching none of them disagrees."""

    name: str
    column: str | None = None  # read by levels that name no column of their own
    description: str | None = None
    levels: list[LevelSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"use lower-case letters, digits and _, got {value!r}")
        return value


_CLUSTER_DEFAULTS = ClusterSettings()


class ClusteringSpec(_Strict):
    """Thresholds of the non-chaining clustering (``identity.clustering``)."""

    link_threshold: float = Field(_CLUSTER_DEFAULTS.link_threshold, gt=0, lt=1)
    merge_weight: float = Field(_CLUSTER_DEFAULTS.merge_weight, ge=-50, le=50)
    weight_clip: float = Field(_CLUSTER_DEFAULTS.weight_clip, gt=0, le=50)
    candidate_threshold: float = Field(_CLUSTER_DEFAULTS.candidate_threshold, gt=0, lt=1)
    max_complete_component: int = Field(_CLUSTER_DEFAULTS.max_complete_component, ge=2)

    def settings(self) -> ClusterSettings:
        return ClusterSettings(**self.model_dump())


class IdentityConfig(_Strict):
    min_populated_share: float = Field(0.1, ge=0, le=1)
    max_block_size: int | None = Field(None, ge=2)
    u_sample_pairs: int = Field(1_000_000, ge=1000)
    derived_columns: dict[str, str] = Field(default_factory=dict)
    comparisons: list[ComparisonSpec] = Field(min_length=1)
    blocking_rules: list[list[str]] = Field(min_length=1)
    training_rules: list[list[str]] = Field(default_factory=list)
    clustering: ClusteringSpec = ClusteringSpec()
    source: Path | None = None

    @field_validator("derived_columns")
    @classmethod
    def _derived_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, sql in value.items():
            if not IDENTIFIER.match(name) or name.startswith(KEY_PREFIX):
                raise ValueError(
                    f"derived column name {name!r}: use lower-case letters, digits and _ "
                    f"(not starting with {KEY_PREFIX})"
                )
            if not isinstance(sql, str) or not sql.strip():
                raise ValueError(f"derived column {name!r}: expected a SQL expression, got {sql!r}")
        return value

    @field_validator("blocking_rules", "training_rules")
    @classmethod
    def _rules(cls, value: list[list[str]]) -> list[list[str]]:
        if len(value) > 60:
            raise ValueError(f"at most 60 rules (each is a bit of a 64-bit mask), got {len(value)}")
        for i, rule in enumerate(value):
            if not rule or any(not isinstance(k, str) or not k.strip() for k in rule):
                raise ValueError(f"rule [{i}]: expected a list of columns or SQL expressions, got {rule!r}")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> IdentityConfig:
        names = [c.name for c in self.comparisons]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"comparison names must be unique, repeated: {', '.join(duplicates)}")
        for c in self.comparisons:
            for level in c.levels:
                if not level.read_columns(c.column):
                    raise ValueError(
                        f"comparison {c.name!r}: a {level.kind} level names no column and the "
                        "comparison has no `column`"
                    )
        return self

    # ------------------------------------------------------------------------------------------ checks

    def check_columns(self, available: set[str] | list[str]) -> None:
        """Every column named in the file exists: an input column or a derived one."""
        known = set(available) | set(self.derived_columns)
        for i, c in enumerate(self.comparisons):
            for j, level in enumerate(c.levels):
                tf = level.term_frequency if isinstance(level.term_frequency, str) else None
                for col in [*level.read_columns(c.column), *([tf] if tf else [])]:
                    if col not in known:
                        self._fail(f"comparisons[{i}].levels[{j}]", "an input or derived column", col, known)
        for key in ("blocking_rules", "training_rules"):
            for i, rule in enumerate(getattr(self, key)):
                for j, expr in enumerate(rule):
                    if IDENTIFIER.match(expr) and expr not in known:
                        self._fail(f"{key}[{i}][{j}]", "an input or derived column (or a SQL expression)", expr, known)

    def _fail(self, key: str, expected: str, got: str, known: set[str]) -> None:
        raise IdentityConfigError(
            f"identity config {self.source}: key '{key}': expected {expected}, got {got!r} "
            f"(known columns: {', '.join(sorted(known))})"
        )

    # --------------------------------------------------------------------------- settings for the data

    def columns_of(self, expr: str, known: set[str]) -> set[str]:
        """Input or derived columns an expression reads (a derived column also reads what its SQL reads)."""
        found = {c for c in known if re.search(rf"\b{re.escape(c)}\b", expr)}
        for name in list(found):
            if name in self.derived_columns:
                found |= self.columns_of(self.derived_columns[name], known - {name})
        return found

    def resolve(self, shares: dict[str, float]) -> ResolvedSettings:
        """The settings for records whose columns are filled on ``shares`` (column → share of records with a
        value; derived columns included), and what was left out and why."""
        known = set(shares) | set(self.derived_columns)
        dropped: list[str] = []

        def populated(col: str) -> bool:
            return shares.get(col, 0.0) >= self.min_populated_share

        def describe(cols: list[str] | set[str]) -> str:
            return ", ".join(f"{c} {shares.get(c, 0.0):.0%}" for c in sorted(cols) if not populated(c))

        comparisons = []
        for c in self.comparisons:
            specs = []
            for level in c.levels:
                cols = level.read_columns(c.column)
                if not all(populated(col) for col in cols):
                    dropped.append(f"comparison {c.name}, level {level.label or level.kind}: {describe(cols)} filled")
                    continue
                tf = None
                if level.term_frequency:
                    tf = level.term_frequency if isinstance(level.term_frequency, str) else cols[0]
                    if not populated(tf):
                        tf = None
                value = {
                    "jaro_winkler": level.at_least,
                    "jaccard": level.at_least,
                    "prefix": level.length,
                    "sql": level.sql,
                }.get(level.kind, level.at_most)
                specs.append(
                    {"kind": level.kind, "columns": cols, "value": value, "label": level.label, "tf_column": tf}
                )
            if specs:
                comparisons.append(cmp.build(c.name, specs))
            else:
                dropped.append(f"comparison {c.name}: no level left")

        derived = list(self.derived_columns.items())
        expression_keys: dict[str, str] = {}

        def rules(key: str) -> list[tuple[str, ...]]:
            kept = []
            for rule in getattr(self, key):
                cols = set().union(*(self.columns_of(e, known) | ({e} if IDENTIFIER.match(e) else set()) for e in rule))
                if not cols or not all(populated(col) for col in cols):
                    dropped.append(
                        f"{key[:-1].replace('_', ' ')} [{', '.join(rule)}]: "
                        f"{describe(cols) + ' filled' if cols else 'reads no known column'}"
                    )
                    continue
                keys = []
                for expr in rule:
                    if IDENTIFIER.match(expr):
                        keys.append(expr)
                    else:  # an inline SQL expression becomes a hidden derived column
                        name = KEY_PREFIX + hashlib.sha1(expr.encode()).hexdigest()[:8]
                        expression_keys[name] = expr
                        keys.append(name)
                kept.append(tuple(keys))
            return kept

        blocking = rules("blocking_rules")
        training = [r for r in rules("training_rules")]
        return ResolvedSettings(
            settings=MatchSettings(
                comparisons=tuple(comparisons),
                blocking_rules=tuple(dict.fromkeys(blocking)),
                training_rules=tuple(dict.fromkeys(training)),
                derived_columns=(*derived, *expression_keys.items()),
                max_block_size=self.max_block_size,
                u_sample_pairs=self.u_sample_pairs,
            ),
            derived_columns=tuple(derived),
            shares=dict(shares),
            dropped=tuple(dropped),
        )


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


def config_path() -> Path:
    """``MOS_IDENTITY_CONFIG`` if set, else the bundled ``config/identity.yaml``."""
    return Path(os.environ.get("MOS_IDENTITY_CONFIG") or CONFIG_FILE)


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (*cmp.LEVEL_KINDS, "kind", "function-after", "function-before"):
            continue  # the level's kind is its key in the file, not a key of its own
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def load_config(path: Path | None = None) -> IdentityConfig:
    """Read and validate the identity config."""
    path = path or config_path()
    try:
        data = read_document(path).data  # the one YAML reader: syntax errors name the line and column
    except ConfigError as exc:
        raise IdentityConfigError(f"identity config {exc}") from exc
    try:
        return IdentityConfig(**data, source=path)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            got = error.get("input")
            message = error["msg"].removeprefix("Value error, ").replace("Input should be", "expected")
            problems.append(
                f"key '{_key(error['loc'])}': {message}"
                + (f" (got {got!r})" if not isinstance(got, (dict, list)) and "got" not in message else "")
            )
        raise IdentityConfigError(f"identity config {path}: " + "; ".join(problems)) from exc
