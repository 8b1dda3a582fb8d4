"""Asset metadata describing one load of a landing source."""

from __future__ import annotations

import dagster as dg

from mos_pipelines.ingestion.loader import SourceLoadResult


def load_metadata(result: SourceLoadResult, total_rows: int) -> dict[str, dg.MetadataValue | int]:
    """Counts, quarantine reasons and per-file outcomes as Dagster metadata."""
    reasons: dict[str, int] = {}
    for f in result.files:
        for reason, n in f.quarantine_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    new_files = result.with_status("loaded")
    unreadable = result.with_status("unreadable")
    file_rows = "\n".join(
        f"| `{f.source_file}` | {f.status} | {f.rows_in} | {f.rows_loaded} | {f.rows_quarantined} | {f.error or ''} |"
        for f in new_files + unreadable
    )
    return {
        "dagster/row_count": total_rows,
        "files_new": len(new_files),
        "files_skipped": len(result.with_status("skipped")),
        "files_unreadable": len(unreadable),
        "files_ignored": len(result.ignored_files),
        "rows_in": result.rows_in,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "quarantine_reasons": dg.MetadataValue.md(
            "\n".join(f"- {n} × {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])) or "none"
        ),
        "files": dg.MetadataValue.md(
            "| file | status | rows in | loaded | quarantined | error |\n|---|---|---|---|---|---|\n" + file_rows
            if file_rows
            else "no new files"
        ),
    }
