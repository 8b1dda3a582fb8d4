"""Splitting the dbt project into two build layers around the models that carry quality gates.

Python asset checks run after the op that materializes their asset. With every dbt model in one op,
a gate on ``fct_events`` would run after the whole ``dbt build`` and could block nothing. So the
manifest is cut in two: the *foundation* layer (the gated models, everything they are built from,
and everything unrelated to them) and the *gated* layer (every other descendant of a gated model).
The gated layer is a separate op that depends on the gated models, so Dagster skips it in the run
where one of their blocking checks failed. Computed from the manifest: new models downstream of a
gate land in the gated layer without anyone listing them.

The activation sync models (``models/activation/``) are the last layer: they read tables that Python
assets write after the gated layer (lookalike scores, experiment assignments, notifications), so
they are built by their own op (``defs/activation/assets.py``). Every one of them that reads a dbt
model must be downstream of a gated model: nothing is activated from data no gate has seen.

Other models that read a table a Python asset writes (a source outside the landing schema ``raw``,
e.g. ``fct_experiment_holdout`` over ``experiments.assignments``; not one whose meta says ``mos_before_dbt``, like
the erasure hashes the staging models filter on) and their descendants form the
*late* layer, built by its own op after those assets and before the sync models: left in the gated
layer, they would make that op both upstream and downstream of the Python assets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUILT_TYPES = ("model", "seed", "snapshot")
ACTIVATION_FOLDER = "activation"  # models/activation/: the sync models
LANDING_SCHEMA = "raw"  # sources in any other schema are tables Python assets write
# ... after dbt, unless the source says otherwise (ops.erasure_identifiers: written right after ingestion)
BEFORE_DBT_META = "mos_before_dbt"


class LayerError(ValueError):
    """A gated model is missing from the manifest, or a sync model is not downstream of a gate."""


@dataclass(frozen=True)
class DbtLayers:
    foundation: tuple[str, ...]  # `fqn:` selectors of built resources (models, seeds, snapshots)
    gated: tuple[str, ...]
    foundation_excluded_tests: tuple[str, ...]  # tests of the foundation that read a later layer's node
    activation: tuple[str, ...] = ()
    gated_excluded_tests: tuple[str, ...] = ()  # tests of the gated layer that read a later layer's node
    late: tuple[str, ...] = ()  # models reading tables Python assets write, and their descendants
    late_excluded_tests: tuple[str, ...] = ()  # tests of the late layer that read an activation node

    @property
    def foundation_select(self) -> str:
        return " ".join(self.foundation)

    @property
    def gated_select(self) -> str:
        return " ".join(self.gated)

    @property
    def late_select(self) -> str:
        return " ".join(self.late)

    @property
    def late_exclude(self) -> str | None:
        return " ".join(self.late_excluded_tests) or None

    @property
    def activation_select(self) -> str:
        return " ".join(self.activation)

    @property
    def foundation_exclude(self) -> str | None:
        return " ".join(self.foundation_excluded_tests) or None

    @property
    def gated_exclude(self) -> str | None:
        return " ".join(self.gated_excluded_tests) or None


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


def _is_sync_model(node: Mapping[str, Any]) -> bool:
    return node["resource_type"] == "model" and len(node["fqn"]) > 2 and node["fqn"][1] == ACTIVATION_FOLDER


def _before_dbt(source: Mapping[str, Any]) -> bool:
    """A source a Python asset writes before any dbt model runs (meta ``mos_before_dbt``), like raw."""
    meta = {**(source.get("meta") or {}), **((source.get("config") or {}).get("meta") or {})}
    return bool(meta.get(BEFORE_DBT_META))


def _reads_python_assets(uid: str, manifest: Mapping[str, Any]) -> bool:
    sources = manifest.get("sources", {})
    return any(
        p in sources and sources[p].get("schema") != LANDING_SCHEMA and not _before_dbt(sources[p])
        for p in manifest["parent_map"].get(uid, [])
    )


def split_layers(manifest: Mapping[str, Any], gated_models: Iterable[str]) -> DbtLayers:
    """Foundation, gated, late and activation layers of ``manifest`` for the models named in ``gated_models``."""
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
    sync_ids = {uid for uid, node in built.items() if _is_sync_model(node)}
    # A sync model that reads warehouse models must read them below a gate. One that reads only
    # sources (tables Python assets write, e.g. notifications) is gated through those assets' own
    # ancestors in the Dagster graph, which the activation sensors check.
    reads_models = {uid for uid in sync_ids if any(p in built for p in manifest["parent_map"].get(uid, []))}
    ungated = sorted(built[uid]["name"] for uid in reads_models - downstream)
    if ungated:
        raise LayerError(
            f"sync model(s) {', '.join(ungated)} are not downstream of any quality gate "
            f"({', '.join(sorted(gated_models))}): activation would skip the gates"
        )
    activation_layer = (sync_ids | _walk(sync_ids, manifest["child_map"])) & set(built)
    late_ids = {uid for uid in built if uid not in activation_layer and _reads_python_assets(uid, manifest)}
    late_layer = (late_ids | _walk(late_ids, manifest["child_map"])) & set(built) - activation_layer
    gated_layer = {uid for uid in downstream - upstream if uid in built} - activation_layer - late_layer
    foundation = set(built) - gated_layer - activation_layer - late_layer
    layer_of = {
        **{uid: 0 for uid in foundation},
        **{uid: 1 for uid in gated_layer},
        **{uid: 2 for uid in late_layer},
        **{uid: 3 for uid in activation_layer},
    }

    def spanning(layer: int) -> tuple[str, ...]:
        """Tests with a parent in ``layer`` and one in a later layer: dbt's eager selection would run
        them in this layer's step, before that later parent is built."""
        found = []
        for uid, node in nodes.items():
            if node["resource_type"] != "test":
                continue
            parent_layers = {layer_of[p] for p in manifest["parent_map"].get(uid, []) if p in layer_of}
            if layer in parent_layers and max(parent_layers) > layer:
                found.append(_fqn(node))
        return tuple(sorted(found))

    return DbtLayers(
        foundation=tuple(sorted(_fqn(built[uid]) for uid in foundation)),
        gated=tuple(sorted(_fqn(built[uid]) for uid in gated_layer)),
        foundation_excluded_tests=spanning(0),
        activation=tuple(sorted(_fqn(built[uid]) for uid in activation_layer)),
        gated_excluded_tests=spanning(1),
        late=tuple(sorted(_fqn(built[uid]) for uid in late_layer)),
        late_excluded_tests=spanning(2),
    )
