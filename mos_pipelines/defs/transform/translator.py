"""How dbt resources appear in Dagster: keys ``[schema, name]``, groups by layer, owners and kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

OWNER = "team:analytics-engineering"
# Domains shown as their own group in the UI (across layers) instead of by layer.
DOMAIN_GROUPS = {"identity", "marketing", "customers"}


class MosDbtTranslator(DagsterDbtTranslator):
    """Asset keys mirror warehouse relations, so a key says where the table lives."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    @staticmethod
    def _schema(props: Mapping[str, Any]) -> str:
        return props.get("config", {}).get("schema") or props["schema"]

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # Sources are the raw tables the ingestion assets write: same key, one lineage.
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        name = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([self._schema(dbt_resource_props), name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "raw"
        domains = DOMAIN_GROUPS.intersection(dbt_resource_props.get("fqn", [])[1:-1])
        return domains.pop() if domains else self._schema(dbt_resource_props)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return (
            dbt_resource_props.get("description")
            or f"dbt {dbt_resource_props['resource_type']} {dbt_resource_props['name']}"
        )

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return [OWNER]

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "layer": self._schema(dbt_resource_props)}
