"""int_notes__attributes reads only new and changed notes: through a real `dbt run` on a copy of the shared world's
warehouse, a note whose key is unchanged keeps the rows the last build wrote (a planted marker survives), and a note
whose stored key no longer matches is read again (the marker is gone, the extractor's evidence is back)."""

from __future__ import annotations

import os
import shutil
import subprocess

import duckdb

from mos_pipelines.transform.project import dbt_command
from tests.integration.conftest import World

MARK = "planted: kept from the last build"


def test_unchanged_notes_keep_their_rows_and_a_stale_key_is_read_again(world: World, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    warehouse = home / "warehouse.duckdb"
    shutil.copy(world.settings.warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        kept, stale = (
            r[0]
            for r in con.execute(
                "select note_id from intermediate.int_notes__attributes group by 1 order by 1 limit 2"
            ).fetchall()
        )
        expected = con.execute(
            "select evidence from intermediate.int_notes__attributes where note_id = ? order by attribute, span_start",
            [stale],
        ).fetchall()
        con.execute(
            "update intermediate.int_notes__attributes set evidence = ? where note_id in (?, ?)", [MARK, kept, stale]
        )
        con.execute("update intermediate.int_notes__attributes set note_key = 'stale' where note_id = ?", [stale])
    env = {**os.environ, "MOS_HOME": str(home), "MOS_DUCKDB_TEMP_DIRECTORY": f"{warehouse}.tmp"}
    command = dbt_command(
        [
            "run",
            "--quiet",
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
            "--select",
            "int_notes__attributes",
        ]
    )
    proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        evidence = dict(
            con.execute(
                "select note_id, list(evidence order by attribute, span_start) from intermediate.int_notes__attributes "
                "where note_id in (?, ?) group by 1",
                [kept, stale],
            ).fetchall()
        )
        keys = con.execute(
            "select count(*) from intermediate.int_notes__attributes where note_key = 'stale'"
        ).fetchone()
    assert set(evidence[kept]) == {MARK}  # reused: the extractor did not read it again
    assert evidence[stale] == [e for (e,) in expected] and MARK not in evidence[stale]  # read again
    assert keys == (0,)
