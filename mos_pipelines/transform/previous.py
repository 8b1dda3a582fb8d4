"""The table a dbt Python model's last build wrote, for a model that reuses what did not change (issue 20).

A Python model reads ``dbt.this`` before dbt replaces it: the rows of the last build. ``previous_table`` returns
them when the table exists and has ``column`` (the column that says what the rows were computed with: a note's key,
the parser's version), else None, so a warehouse built before that column existed computes everything once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def previous_table(con: Any, schema: str, table: str, column: str, where: str = "true") -> pd.DataFrame | None:
    """The rows of ``schema.table`` matching ``where`` (SQL over its columns), or None without that table or
    without ``column`` in it."""
    found = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?",
        [schema, table, column],
    ).fetchall()[0][0]
    if not found:
        return None
    return con.execute(f'select * from "{schema}"."{table}" where {where}').df()
