"""Splitting the dbt project into two build layers around the models that carry quality gates.

Python asset checks run after the op that materializes their asset. With every dbt model in one op,
a gate on ``fct_events`` would run after the whole ``dbt build`` and could block nothing. So the
manifest is cut in two: the *foundation* layer (the gated models, everything they are built from,
and everything unrelated to them) and the *gated* layer (every other descendant of a gated model).
The gated layer is a separate op that depends on the gated models, so Dagster skips it in the run
where one of their blocking checks failed. Computed from the manifest: new models downstream of a
gate land in the gated layer without anyone listing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUILT_TYPES = ("model", "seed", "snapshot")


class LayerError(ValueError):
    """A gated model is missing from the manifest."""


@dataclass(frozen=True)
class DbtLayers:
    foundation: tuple[str, ...]  # `fqn:` selectors of built resources (models, seeds, snapshots)
    gated: tuple[str, ...]
    foundation_excluded_tests: tuple[str, ...]  # tests of the foundation that read a gated-layer node

    @property
    def foundation_select(self) -> str:
        return " ".join(self.foundation)

    @property
    def gated_select(self) -> str:
        return " ".join(self.gated)

    @property
    def foundation_exclude(self) -> str | None:
        return " ".join(self.foundation_excluded_tests) or None


def _walk(start: Iterable[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        for nxt in edges.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _fqn(node: Mapping[str, Any]) -> str:
    """A dbt selector for exactly this node (its full fully-qualified name)."""
    return "fqn:" + ".".join(node["fqn"])


def split_layers(manifest: Mapping[str, Any], gated_models: Iterable[str]) -> DbtLayers:
    """Foundation and gated layers of ``manifest`` for the models named in ``gated_models``."""
    nodes = manifest["nodes"]
    built = {uid: n for uid, n in nodes.items() if n["resource_type"] in BUILT_TYPES}
    by_name: dict[str, str] = {}
    for uid, node in built.items():
        if node["resource_type"] == "model":
            by_name[node["name"]] = uid
    gated_ids = set()
    for name in gated_models:
        if name not in by_name:
            raise LayerError(f"gated model {name!r} is not a model of the dbt project (known: {len(by_name)} models)")
        gated_ids.add(by_name[name])
    upstream = _walk(gated_ids, manifest["parent_map"]) | gated_ids
    downstream = _walk(gated_ids, manifest["child_map"])
    gated_layer = {uid for uid in downstream - upstream if uid in built}
    foundation = set(built) - gated_layer
    excluded_tests = sorted(
        _fqn(node) for uid, node in nodes.items()
        if node["resource_type"] == "test"
        and any(p in gated_layer for p in manifest["parent_map"].get(uid, []))
        and any(p in foundation for p in manifest["parent_map"].get(uid, []))
    )
    return DbtLayers(
        foundation=tuple(sorted(_fqn(built[uid]) for uid in foundation)),
        gated=tuple(sorted(_fqn(built[uid]) for uid in gated_layer)),
        foundation_excluded_tests=tuple(excluded_tests),
    )
