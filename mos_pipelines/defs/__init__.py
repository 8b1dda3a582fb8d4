"""Dagster wiring, one package per domain; ``build_definitions`` composes them for ``mos_pipelines.definitions``.

Each domain is imported when the definitions are built, not when this package is imported, and on its own:
a domain that cannot load (a typo in its config file, a dbt manifest not prepared yet) becomes one
non-materializable asset in the group ``load_errors`` whose description is the error, naming the file and
the key, and every other domain loads and runs. ``mos run`` prints those errors and still builds the rest.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass

import dagster as dg

# Upstream domains first: a domain's module may import an earlier one's (activation reads transform's layers).
DOMAINS = (
    "ingestion",
    "transform",
    "quality",
    "identity",
    "ml",
    "experiments",
    "insights",
    "policy",
    "activation",
    "crm",
)
LOAD_ERRORS_GROUP = "load_errors"


@dataclass(frozen=True)
class DomainError:
    """A domain that did not load, and why."""

    domain: str
    message: str

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([LOAD_ERRORS_GROUP, self.domain])


def _error_definitions(error: DomainError) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                key=error.key,
                group_name=LOAD_ERRORS_GROUP,
                kinds={"error"},
                description=f"**The `{error.domain}` domain did not load; its assets are missing until this is fixed.**\n\n"
                f"{error.message}",
                metadata={"domain": error.domain, "error": error.message},
            )
        ]
    )


def load_domain(name: str) -> dg.Definitions | DomainError:
    """The definitions of ``mos_pipelines.defs.<name>``, or why they could not be loaded."""
    try:
        return dg.load_definitions_from_package_module(importlib.import_module(f"{__name__}.{name}"))
    except Exception as exc:  # any failure stays inside its domain; the message is what a person reads
        return DomainError(name, f"{type(exc).__name__}: {exc}")


def build_definitions() -> dg.Definitions:
    """Shared resources, the full build and its schedule, and every domain that loads."""
    from mos_pipelines.defs import resources, schedules

    with warnings.catch_warnings():
        # the module loaders are marked preview in Dagster 1.13; they are what load_from_defs_folder uses
        warnings.simplefilter("ignore", dg.PreviewWarning)
        parts = [resources.resources(), dg.load_definitions_from_module(schedules)]
        for name in DOMAINS:
            loaded = load_domain(name)
            parts.append(_error_definitions(loaded) if isinstance(loaded, DomainError) else loaded)
        parts.append(_erasure_definitions(parts))
        parts.append(_blueprint_definitions())
    return dg.Definitions.merge(*parts)


def _erasure_definitions(parts: list[dg.Definitions]) -> dg.Definitions:
    """The erasure requests' completion asset, downstream of every other asset of the full build (it removes the
    erased people from whatever those wrote); nothing when the crm domain did not load."""
    try:
        from mos_pipelines.defs.activation.gating import DELIVERY_TAG
        from mos_pipelines.defs.crm import erasure
        from mos_pipelines.defs.schedules import BLUEPRINT_GROUP

        return erasure.definitions(parts, dict([DELIVERY_TAG]), {BLUEPRINT_GROUP, LOAD_ERRORS_GROUP})
    except Exception as exc:  # never takes the other definitions down
        return _error_definitions(DomainError("crm_erasure", f"{type(exc).__name__}: {exc}"))


def _blueprint_definitions() -> dg.Definitions:
    """The approved blueprints' jobs (none when there is no blueprint; a file that cannot run is left out)."""
    from mos_pipelines.defs import blueprint
    from mos_pipelines.settings import get_settings

    try:
        return blueprint.definitions(get_settings().mos_home / "blueprints")
    except Exception:  # the blueprints never take the other definitions down
        return dg.Definitions()


def load_errors(definitions: dg.Definitions) -> list[DomainError]:
    """The domains that did not load, read back from their error assets."""
    errors = []
    for spec in definitions.assets or []:
        if isinstance(spec, dg.AssetSpec) and spec.group_name == LOAD_ERRORS_GROUP:
            errors.append(DomainError(str(spec.metadata["domain"]), str(spec.metadata["error"])))
    return errors
