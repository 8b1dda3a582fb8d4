"""``config/identity.yaml``: what probabilistic CRM matching compares, blocks on and trains on.

The file is the matcher's settings as data, the way Splink users write a settings dictionary: derived columns
(SQL over one record), comparisons made of levels, blocking rules, EM training rules and the clustering
thresholds. Nothing in it is a weight: m, u and λ are estimated by EM on the records of every run. The settings
a run uses are these resolved against the columns the records fill (``mos_pipelines.identity.population``).

Read by ``mos_pipelines.identity`` (``int_crm_contacts__matched``, ``mos identity explain``) and checked by
``mos run`` before it starts. ``MOS_IDENTITY_CONFIG`` names a file merged over this one: mappings
(``derived_columns``, ``clustering``) merge key by key, lists (``comparisons``, the rules) replace.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from mos_pipelines.configuration.base import DomainSettings, Invalid, Section, Share, Text, merged

# The vocabulary of levels (built into SQL by ``mos_pipelines.identity.comparisons.level``).
LEVEL_KINDS = (
    "exact",
    "jaro_winkler",
    "levenshtein",
    "damerau_levenshtein",
    "swapped",
    "day_month_swapped",
    "year_month",
    "year",
    "within_years",
    "jaccard",
    "prefix",
    "sql",
)
SIMILARITY_KINDS = ("jaro_winkler", "jaccard")  # take at_least (0..1]
DISTANCE_KINDS = ("levenshtein", "damerau_levenshtein", "within_years")  # take at_most (whole number)

# The columns of intermediate.int_crm_contacts__normalised the matcher reads; a column absent from the
# records is taken as empty. Derived columns are computed from these.
INPUT_COLUMNS = (
    "first_name_norm",
    "last_name_norm",
    "full_name_norm",
    "recorded_full_name_norm",
    "email_match_key",
    "phone_e164",
    "company_norm",
    "job_title_norm",
    "city_norm",
    "postcode_norm",
    "country_code",
    "birth_date",
)
KEY_PREFIX = "_key_"  # hidden derived columns for blocking keys written as SQL expressions
COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_RULES = 60  # each rule is a bit of a 64-bit mask on every candidate pair


class LevelSpec(Section):
    """One level: its kind and the options of that kind. In the file, ``exact`` or ``{jaro_winkler: {at_least: 0.9}}``."""

    kind: Literal[LEVEL_KINDS]  # type: ignore[valid-type]
    column: StrictStr | None = None
    columns: tuple[StrictStr, ...] | None = None
    at_least: float | None = Field(None, gt=0, le=1)
    at_most: int | None = Field(None, ge=0)
    length: int | None = Field(None, ge=1)
    sql: StrictStr | None = None
    label: StrictStr | None = None
    term_frequency: StrictBool | StrictStr = False
    # A value held by fewer records than this is weighed at the level's average u: on an identifier (a birth
    # date, an email) a handful of records sharing a value are mostly one person's duplicates, so their count
    # measures duplication, not how common the value is.
    term_frequency_min_records: int | None = Field(None, ge=2)

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        """``exact`` or ``{jaro_winkler: {at_least: 0.9}}`` → ``{kind: ..., **options}``."""
        if isinstance(data, str):
            data = {data: None}
        if isinstance(data, dict) and "kind" not in data:
            if len(data) != 1:
                raise Invalid("a level: one kind with its options, e.g. {jaro_winkler: {at_least: 0.9}}")
            ((kind, options),) = data.items()
            if kind not in LEVEL_KINDS:
                raise Invalid(f"a level kind: one of {', '.join(LEVEL_KINDS)}", got=kind, has_got=True)
            if options is None:
                options = {}
            if not isinstance(options, dict):
                raise Invalid(f"the options of level {kind!r} as a mapping", (kind,))
            return {"kind": kind, **options}
        return data

    @model_validator(mode="after")
    def _options(self) -> LevelSpec:
        if self.column is not None and self.columns is not None:
            raise ValueError("`column` or `columns`, not both")
        if self.kind in SIMILARITY_KINDS and self.at_least is None:
            raise ValueError(f"a {self.kind} level with `at_least` (a similarity in (0, 1])")
        if self.kind in DISTANCE_KINDS and self.at_most is None:
            raise ValueError(f"a {self.kind} level with `at_most` (a whole number)")
        if self.kind == "prefix" and self.length is None:
            raise ValueError("a prefix level with `length` (characters)")
        if self.kind == "sql" and not (self.sql and self.columns):
            raise ValueError(
                "a sql level with `sql` (a condition over l.<column> and r.<column>) and `columns` (those it reads)"
            )
        if self.term_frequency and self.kind not in ("exact", "sql"):
            raise ValueError(
                "term_frequency on exact levels (and sql levels that imply equality on the column "
                "named) only: agreement on one value"
            )
        if self.term_frequency_min_records is not None and not self.term_frequency:
            raise ValueError("term_frequency_min_records with term_frequency only")
        if self.kind == "sql" and self.term_frequency is True:
            raise ValueError("a sql level that names its term_frequency column (one its condition makes equal)")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Dumped the way the file writes it (``exact``, ``{jaro_winkler: {at_least: 0.9}}``), so ``mos config
        show`` names the line each level came from."""
        data = handler(self)
        kind = data.pop("kind")
        options = {k: v for k, v in data.items() if v != LevelSpec.model_fields[k].default}
        return {kind: options} if options else kind

    def read_columns(self, default: str | None) -> list[str]:
        if self.columns:
            return list(self.columns)
        if self.column:
            return [self.column]
        return [default] if default else []

    def tf_column(self, default: str | None) -> str | None:
        """The column whose value frequencies weigh an agreement (None without term frequency)."""
        if not self.term_frequency:
            return None
        return self.term_frequency if isinstance(self.term_frequency, str) else self.read_columns(default)[0]


class ComparisonSpec(Section):
    """A comparison: its levels, most similar first; a pair matching none of them disagrees."""

    name: StrictStr
    column: StrictStr | None = None  # read by levels that name no column of their own
    description: StrictStr | None = None
    levels: tuple[LevelSpec, ...]

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        return {k: v for k, v in handler(self).items() if v is not None}

    @field_validator("levels")
    @classmethod
    def _some_levels(cls, value: tuple[LevelSpec, ...]) -> tuple[LevelSpec, ...]:
        if not value:
            raise ValueError("at least one level")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COLUMN.match(value):
            raise ValueError("a comparison name of lower-case letters, digits and _")
        return value


class ClusteringSpec(Section):
    """Thresholds of the non-chaining clustering (``mos_pipelines.identity.clustering``)."""

    link_threshold: float = Field(gt=0, lt=1)
    merge_weight: float = Field(ge=-50, le=50)
    weight_clip: float = Field(gt=0, le=50)
    candidate_threshold: float = Field(gt=0, lt=1)
    max_complete_component: int = Field(ge=2)


Rule = tuple[Text, ...]


class BlockingRule(Section):
    """A blocking rule with options, in the file ``{keys: [birth_date_text], max_block_size: 10}`` or
    ``{keys: [last_name_norm, city_norm], unless_both_have: [email_match_key, phone_e164]}``.

    ``max_block_size``: its own block-size cap (default: the file's). ``unless_both_have``: the rule pairs two
    records only where, on every column listed, at least one of them has no value: a weak key (a name and a
    city) then pairs only records that strong identifiers cannot (a record without email or phone, or two
    records whose identifiers are of different kinds); two records that both have an email are left to the
    rules on stronger keys. With ``in_blocks_over: N`` that holds only in blocks of more than N records. A column
    filled on too few records to be used is dropped from the list."""

    keys: Rule = Field(min_length=1)
    max_block_size: int | None = Field(None, ge=2)
    unless_both_have: tuple[StrictStr, ...] = ()
    # ``unless_both_have`` only in blocks of more records than this (smaller blocks pair everyone): a rare key
    # shared by a handful of records is evidence enough, a common one (a frequent surname in a big city) is not.
    in_blocks_over: int | None = Field(None, ge=1)

    @field_validator("unless_both_have")
    @classmethod
    def _few_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 3:  # one join per pair of compatible fill patterns: 14 for three columns
            raise ValueError("at most 3 columns")
        return value

    @field_validator("in_blocks_over")
    @classmethod
    def _over(cls, value: int | None, info: Any) -> int | None:
        if value is not None and not info.data.get("unless_both_have"):
            raise ValueError("`in_blocks_over` with `unless_both_have` only (it says where that applies)")
        cap = info.data.get("max_block_size")
        if value is not None and cap and value >= cap:
            raise ValueError("`in_blocks_over` smaller than the rule's `max_block_size` (else it never applies)")
        return value

    @model_validator(mode="after")
    def _some_option(self) -> BlockingRule:
        if self.max_block_size is None and not self.unless_both_have:
            raise ValueError("a rule written as a mapping with `max_block_size` or `unless_both_have` (else a list)")
        return self


# A rule is a list of keys, or a mapping with its own cap: which one is told by the shape, so an error names
# only what the entry was meant to be.
AnyRule = Annotated[
    Annotated[Rule, Tag("keys")] | Annotated[BlockingRule, Tag("mapping")],
    Discriminator(lambda value: "mapping" if isinstance(value, (dict, BlockingRule)) else "keys"),
]


def rule_keys(rule: Rule | BlockingRule) -> Rule:
    return rule.keys if isinstance(rule, BlockingRule) else rule


class IdentitySettings(DomainSettings):
    min_populated_share: Share
    max_block_size: int | None = Field(None, ge=2)
    u_sample_pairs: int = Field(ge=1000)
    derived_columns: dict[StrictStr, Text] = merged(default_factory=dict)
    comparisons: tuple[ComparisonSpec, ...]
    blocking_rules: tuple[AnyRule, ...]
    training_rules: tuple[Rule, ...] = ()
    clustering: ClusteringSpec

    @field_validator("derived_columns")
    @classmethod
    def _derived_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not COLUMN.match(name) or name.startswith(KEY_PREFIX) or name in INPUT_COLUMNS:
                raise Invalid(
                    f"a new column name of lower-case letters, digits and _ (not an input column, not "
                    f"starting with {KEY_PREFIX})",
                    (name,),
                    got=name,
                    has_got=True,
                )
        return value

    @field_validator("comparisons")
    @classmethod
    def _some_comparisons(cls, value: tuple[ComparisonSpec, ...]) -> tuple[ComparisonSpec, ...]:
        if not value:
            raise ValueError("at least one comparison")
        return value

    @field_validator("blocking_rules", "training_rules")
    @classmethod
    def _rules(cls, value: tuple[Rule | BlockingRule, ...], info: Any) -> tuple[Rule | BlockingRule, ...]:
        if info.field_name == "blocking_rules" and not value:
            raise ValueError("at least one blocking rule")
        if len(value) > MAX_RULES:
            raise ValueError(f"at most {MAX_RULES} rules")
        for index, rule in enumerate(value):
            if not rule_keys(rule):
                raise Invalid("a rule: a list of columns or SQL expressions over one record", (index,))
        return value

    @model_validator(mode="after")
    def _known_columns(self) -> IdentitySettings:
        """Comparison names are unique; every column named is an input or a derived column."""
        known = set(INPUT_COLUMNS) | set(self.derived_columns)
        hint = "an input column (" + ", ".join(INPUT_COLUMNS) + ") or a derived column"
        seen: set[str] = set()
        for i, comparison in enumerate(self.comparisons):
            if comparison.name in seen:
                raise Invalid(
                    f"a comparison name used once ({comparison.name!r} is listed twice)", ("comparisons", i, "name")
                )
            seen.add(comparison.name)
            for j, level in enumerate(comparison.levels):
                columns = level.read_columns(comparison.column)
                if not columns:
                    raise Invalid(
                        f"a {level.kind} level that names its column (or a `column` on the comparison)",
                        ("comparisons", i, "levels", j),
                    )
                tf = level.term_frequency if isinstance(level.term_frequency, str) else None
                for column in [*columns, *([tf] if tf else [])]:
                    if column not in known:
                        raise Invalid(hint, ("comparisons", i, "levels", j), got=column, has_got=True)
        for key in ("blocking_rules", "training_rules"):
            for i, rule in enumerate(getattr(self, key)):
                at = (key, i, "keys") if isinstance(rule, BlockingRule) else (key, i)
                for j, expression in enumerate(rule_keys(rule)):
                    if COLUMN.match(expression) and expression not in known:
                        raise Invalid(hint + " (or a SQL expression)", (*at, j))
                if isinstance(rule, BlockingRule):
                    for j, column in enumerate(rule.unless_both_have):
                        if column not in known:
                            raise Invalid(hint, (key, i, "unless_both_have", j), got=column, has_got=True)
                        if column in rule.keys:
                            raise Invalid(
                                "a column the rule does not block on (its pairs all have it)",
                                (key, i, "unless_both_have", j),
                                got=column,
                                has_got=True,
                            )
        return self
