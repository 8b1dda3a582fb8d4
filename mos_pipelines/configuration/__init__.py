"""The one configuration model of MOS Pipelines: typed settings (pydantic) for every file of ``config/``, one
loader, one error (``ConfigError``: file, key, expected, got), and the vars dbt receives.

- ``registry``: the files (one per domain), their models and override variables; ``load_<domain>()``.
- ``loader``: YAML with line numbers, merging an override over the bundled file, pydantic errors as problems.
- ``dbt``: every ``mos__*`` var for ``--vars``, including values other domains own.
- ``access``, ``activation``, ``assistant``, ``blueprint``, ``experiments``, ``identity``, ``insights``, ``llm``, ``lookalike``, ``policy``, ``quality``, ``transform``, ``warehouse``: the models.

The layout of ``config/`` and who reads what: ``config/README.md``.
"""

from mos_pipelines.configuration.errors import ConfigError, Problem
from mos_pipelines.configuration.registry import (
    DOMAINS,
    load,
    load_access,
    load_activation,
    load_assistant,
    load_blueprint,
    load_experiments,
    load_identity,
    load_insights,
    load_llm,
    load_lookalike,
    load_policy,
    load_quality,
    load_transform,
    load_warehouse,
    provenance,
)

__all__ = [
    "ConfigError",
    "Problem",
    "DOMAINS",
    "load",
    "provenance",
    "load_access",
    "load_assistant",
    "load_activation",
    "load_blueprint",
    "load_experiments",
    "load_identity",
    "load_insights",
    "load_llm",
    "load_lookalike",
    "load_policy",
    "load_quality",
    "load_transform",
    "load_warehouse",
]
