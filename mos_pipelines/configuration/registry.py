"""The files of ``config/``: one per domain, its model, the environment variable that points at an override file,
what it configures and who reads it. ``load`` is the one way any part of MOS Pipelines reads its settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_pipelines.configuration.access import AccessSettings
from mos_pipelines.configuration.activation import ActivationSettings
from mos_pipelines.configuration.assistant import AssistantSettings
from mos_pipelines.configuration.base import DomainSettings
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.configuration.errors import ConfigError, display_path, phrased
from mos_pipelines.configuration.experiments import ExperimentsSettings
from mos_pipelines.configuration.identity import IdentitySettings
from mos_pipelines.configuration.insights import InsightsSettings
from mos_pipelines.configuration.llm import LLMSettings
from mos_pipelines.configuration.loader import Document, format_key, leaves, load_documents, read_document, source_of
from mos_pipelines.configuration.lookalike import LookalikeSettings
from mos_pipelines.configuration.policy import PolicySettings
from mos_pipelines.configuration.quality import QualitySettings
from mos_pipelines.configuration.transform import TransformSettings
from mos_pipelines.configuration.warehouse import WarehouseSettings
from mos_pipelines.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "config"


@dataclass(frozen=True)
class Domain:
    name: str
    model: type[DomainSettings]
    what: str
    readers: str

    @property
    def file(self) -> Path:
        """The bundled file: where every value of the domain is declared."""
        return CONFIG_DIR / f"{self.name}.yaml"

    @property
    def env(self) -> str:
        """The environment variable naming an override file merged over the bundled one."""
        return f"MOS_{self.name.upper()}_CONFIG"


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            "access",
            AccessSettings,
            "users of the web app, the assistant, the MCP server and the CRM API; their roles and permissions",
            "mos_pipelines.access (`mos serve`, `mos ask`, `mos mcp`, the CRM API)",
        ),
        Domain(
            "activation",
            ActivationSettings,
            "sync models and their consent purposes, destinations, kill switches, retries, email, copy",
            "mos_pipelines.activation (delivery assets, sensors, `mos activation`), the consent quality gates, "
            "dbt (sync models)",
        ),
        Domain(
            "assistant",
            AssistantSettings,
            "how the assistant reads a question (words for metrics, dimensions and values), the governed customer "
            "look-up, the limits of an answer (rows, statement timeout, question length)",
            "mos_pipelines.assistant (`mos ask`, the web app's /ask, `mos mcp`)",
        ),
        Domain(
            "blueprint",
            BlueprintSettings,
            "goal metrics and their words, segment dimensions and synonyms, goal arithmetic, the rule-based planner",
            "mos_pipelines.blueprint (`mos blueprint new / validate / diff / approve`)",
        ),
        Domain(
            "experiments",
            ExperimentsSettings,
            "holdout and assignment, goals, the variant bandit, budget allocation, A/B statistics",
            "mos_pipelines.experiments (assignments, allocations, `mos experiments`, `mos simulate`), dbt (conversion "
            "window, nurture holdout)",
        ),
        Domain(
            "identity",
            IdentitySettings,
            "CRM record matching: derived columns, comparisons and their levels, blocking and EM training rules, "
            "the population threshold, clustering thresholds",
            "mos_pipelines.identity (int_crm_contacts__matched, `mos identity explain`), `mos run` (checked first)",
        ),
        Domain(
            "insights",
            InsightsSettings,
            "insight families, significance and materiality thresholds, readers, notifications, the report",
            "mos_pipelines.insights (insights and notifications assets, `mos insights`)",
        ),
        Domain(
            "llm",
            LLMSettings,
            "the model (and fallbacks) of each LLM task",
            "mos_pipelines.llm (insight text, email copy, blueprint intake and planning)",
        ),
        Domain(
            "lookalike",
            LookalikeSettings,
            "lookalike model settings, degradation limits, audiences",
            "mos_pipelines.lookalike (ml.lookalike_scores, `mos lookalike score`)",
        ),
        Domain(
            "policy",
            PolicySettings,
            "ICP fit rules, engagement decay and tiers; lead routing rules, teams and reps; contact caps, quiet "
            "hours, cool-down, time zones and per-action eligibility",
            "mos_pipelines.policy (policy.icp_scores, policy.routing_assignments, policy.contact_eligibility, "
            "`mos policy`)",
        ),
        Domain(
            "quality",
            QualitySettings,
            "thresholds of the blocking quality gates (the GX suites' parameters)",
            "mos_pipelines.quality (gate checks), dbt (duplicate-customer test)",
        ),
        Domain(
            "transform",
            TransformSettings,
            "the dbt project's vars (mos__*)",
            "dbt, through `--vars` on every invocation mos makes (Dagster, `mos dbt`, lint, manifest parse)",
        ),
        Domain(
            "warehouse",
            WarehouseSettings,
            "the engine the dbt project builds on (duckdb, spark) and the DuckDB engine settings of every "
            "connection: threads, memory limit, spill folder",
            "mos_pipelines.warehouse (Python assets, CLI, web app, the dbt steps' engine), dbt (the profile, "
            "through MOS_DUCKDB_*)",
        ),
    )
}


def domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise ConfigError(
            CONFIG_DIR,
            name,
            f"one of the configuration domains {', '.join(DOMAINS)}",
            phrased(f"the unknown domain {name!r}"),
        ) from None


def documents(name: str, path: Path | str | None = None) -> list[Document]:
    """The files that make a domain's settings: the bundled file, then the override file (``path``, else the
    domain's environment variable) when there is one."""
    d = domain(name)
    docs = [read_document(d.file)]
    label = ""
    if path is None and os.environ.get(d.env):
        path = os.environ[d.env]
        label = f"${d.env} ({path})"
    if path is not None and Path(path).resolve() != d.file.resolve():
        docs.append(read_document(path, label or display_path(path)))
    return docs


def load(name: str, path: Path | str | None = None) -> Any:
    """The validated settings of one domain (see ``documents`` for which files)."""
    return load_documents(domain(name).model, documents(name, path))


def provenance(name: str, path: Path | str | None = None) -> list[tuple[str, Any, str]]:
    """(dotted key, effective value, where it came from) for every value of one domain."""
    docs = documents(name, path)
    settings = load_documents(domain(name).model, docs)
    return [
        (format_key(key), value, source_of(key, value, docs)) for key, value in leaves(settings.model_dump(mode="json"))
    ]


def load_access(path: Path | str | None = None) -> AccessSettings:
    return load("access", path)


def load_assistant(path: Path | str | None = None) -> AssistantSettings:
    return load("assistant", path)


def load_activation(path: Path | str | None = None) -> ActivationSettings:
    return load("activation", path)


def load_blueprint(path: Path | str | None = None) -> BlueprintSettings:
    return load("blueprint", path)


def load_experiments(path: Path | str | None = None) -> ExperimentsSettings:
    return load("experiments", path)


def load_identity(path: Path | str | None = None) -> IdentitySettings:
    return load("identity", path)


def load_insights(path: Path | str | None = None) -> InsightsSettings:
    return load("insights", path)


def load_llm(path: Path | str | None = None) -> LLMSettings:
    return load("llm", path)


def load_lookalike(path: Path | str | None = None) -> LookalikeSettings:
    return load("lookalike", path)


def load_policy(path: Path | str | None = None) -> PolicySettings:
    return load("policy", path)


def load_quality(path: Path | str | None = None) -> QualitySettings:
    return load("quality", path)


def load_transform(path: Path | str | None = None) -> TransformSettings:
    return load("transform", path)


def load_warehouse(path: Path | str | None = None) -> WarehouseSettings:
    return load("warehouse", path)
