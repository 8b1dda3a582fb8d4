"""Checks on the raw layer: counts reconcile (blocking) and no file was unreadable (warning)."""

import dagster as dg

from mos_pipelines.defs._common import warehouse_check
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.ingestion.contracts import SOURCES, Source
from mos_pipelines.ingestion.loader import reconciliation_errors
from mos_pipelines.warehouse import scalar


def build_reconciliation_check(source: Source) -> dg.AssetChecksDefinition:
    @warehouse_check(
        asset=["raw", source.raw_table],
        name="rows_reconcile",
        blocking=True,
        description="For every loaded file: rows in the file = rows in the raw table + rows quarantined.",
    )
    def _check(mos: MosHome) -> dg.AssetCheckResult:
        with mos.connect() as con:
            errors = reconciliation_errors(con, source.name)
            files = scalar(
                con, "select count(*) from ops.file_ledger where source = ? and status = 'loaded'", [source.name]
            )
        return dg.AssetCheckResult(
            passed=not errors,
            metadata={
                "files_checked": files,
                "mismatches": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "none"),
            },
        )

    return _check


def build_unreadable_check(source: Source) -> dg.AssetChecksDefinition:
    @warehouse_check(
        asset=["raw", source.raw_table],
        name="no_unreadable_files",
        description="Warns when a landing file could not be read at all (it is listed with the reason).",
    )
    def _check(mos: MosHome) -> dg.AssetCheckResult:
        with mos.connect() as con:
            rows = con.execute(
                "select source_file, error from ops.file_ledger where source = ? and status = 'unreadable' order by 1",
                [source.name],
            ).fetchall()
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"unreadable": dg.MetadataValue.md("\n".join(f"- `{f}`: {e}" for f, e in rows) or "none")},
        )

    return _check


raw_checks = [
    build(source) for source in SOURCES.values() for build in (build_reconciliation_check, build_unreadable_check)
]
