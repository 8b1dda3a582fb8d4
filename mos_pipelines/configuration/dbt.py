"""The vars dbt receives: every ``mos__*`` var, built from the configuration model on each dbt invocation.

``config/transform.yaml`` declares the dbt project's own settings; a value another domain owns is declared there
once and handed to dbt here, so Python and SQL read the same value:

| dbt var | declared in |
|---|---|
| ``mos__identity_max_duplicate_rate`` | ``config/quality.yaml`` ``duplicate_customers.max_rate`` |
| ``mos__identity_min_customers_for_duplicate_rate`` | ``config/quality.yaml`` ``duplicate_customers.min_customers`` |
| ``mos__marketing_variant_conversion_window_days`` | ``config/experiments.yaml`` ``bandit.conversion_window_days`` |
| ``mos__activation_sync_models`` | ``config/activation.yaml`` ``sync_models`` (+ each campaign's holdout share from ``config/experiments.yaml``) |
"""

from __future__ import annotations

import json
from typing import Any

from mos_pipelines.configuration.errors import ConfigError
from mos_pipelines.configuration.loader import source_of
from mos_pipelines.configuration.registry import (
    documents,
    load_activation,
    load_experiments,
    load_quality,
    load_transform,
)
from mos_pipelines.settings import DBT_PROJECT_DIR

ACTIVATION_MODELS = DBT_PROJECT_DIR / "models" / "activation"

# dbt var -> (domain, dotted key) of the value it carries, for vars another domain owns.
DERIVED: dict[str, tuple[str, str]] = {
    "mos__identity_max_duplicate_rate": ("quality", "duplicate_customers.max_rate"),
    "mos__identity_min_customers_for_duplicate_rate": ("quality", "duplicate_customers.min_customers"),
    "mos__marketing_variant_conversion_window_days": ("experiments", "bandit.conversion_window_days"),
    "mos__activation_sync_models": ("activation", "sync_models"),
}


def dbt_vars(lenient: bool = False) -> dict[str, Any]:
    """Every var the dbt project reads, from the current configuration (bundled files and their overrides).

    ``lenient``: a broken ``config/activation.yaml`` gives each sync model an empty settings mapping instead of an
    error, so the rest of the project still parses and builds (the sync models are built only by the activation
    domain's step, which does not load while its config is broken and shows the error). The transform domain and
    the manifest parse use it; `mos dbt` and the activation step do not."""
    quality, experiments = load_quality(), load_experiments()
    try:
        activation = load_activation()
    except ConfigError:
        if not lenient:
            raise
        values = load_transform().dbt_vars()
        values.update(_shared(quality, experiments))
        values["mos__activation_sync_models"] = {path.stem: {} for path in sorted(ACTIVATION_MODELS.glob("sync_*.sql"))}
        return dict(sorted(values.items()))
    values = load_transform().dbt_vars()
    values.update(_shared(quality, experiments))
    sync_models = {}
    for name, model in activation.sync_models.items():
        settings = model.model_dump(mode="json", exclude_none=True)
        settings["consent_purpose"] = model.consent_purpose
        if model.campaign_id is not None:  # the placeholder holdout before experiments.assignments exists
            settings["holdout_share"] = experiments.holdout_share_for(model.campaign_id)
        sync_models[name] = settings
    values["mos__activation_sync_models"] = sync_models
    return dict(sorted(values.items()))


def _shared(quality: Any, experiments: Any) -> dict[str, Any]:
    """The vars whose values the quality and experiments files declare."""
    return {
        "mos__identity_max_duplicate_rate": quality.duplicate_customers.max_rate,
        "mos__identity_min_customers_for_duplicate_rate": quality.duplicate_customers.min_customers,
        "mos__marketing_variant_conversion_window_days": experiments.bandit.conversion_window_days,
    }


def vars_json(values: dict[str, Any] | None = None, lenient: bool = False) -> str:
    """The vars as the one-line YAML (JSON) string ``--vars`` takes; stable for equal settings."""
    return json.dumps(dbt_vars(lenient) if values is None else values, sort_keys=True, separators=(",", ":"))


def vars_args(lenient: bool = False) -> list[str]:
    """``["--vars", <json>]`` for a dbt command line."""
    return ["--vars", vars_json(lenient=lenient)]


def dbt_provenance() -> list[tuple[str, Any, str]]:
    """(var, value, where it came from) for every dbt var: the file, line and key that declare it."""
    values = dbt_vars()
    docs = {name: documents(name) for name in ("transform", *{d for d, _ in DERIVED.values()})}
    out = []
    for var, value in values.items():
        domain, key = DERIVED.get(var, ("transform", var))
        path = tuple(key.split("."))
        if var == "mos__activation_sync_models":  # holdout shares are added from config/experiments.yaml
            source = source_of(path, _without_holdout(value), docs[domain])
            source += " (+ holdout_share: config/experiments.yaml assignment.holdout_share or experiments.<campaign>)"
        else:
            source = source_of(path, value, docs[domain])
        out.append((var, value, source))
    return out


def _without_holdout(sync_models: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in settings.items() if k != "holdout_share"} for name, settings in sync_models.items()}
