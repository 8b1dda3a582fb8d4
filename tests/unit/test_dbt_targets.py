"""Each dbt invocation's folder under $MOS_HOME/dbt/target starts from the parse state the previous one left."""

import os

from mos_pipelines.transform.targets import KEEP, PARSE_STATE, invocation_target, keep_parse_state, targets_dir


def test_an_invocation_starts_from_the_last_parse_state_of_its_warehouse(tmp_path):
    first = invocation_target(tmp_path, "dbt_foundation", "a30ebcaa-d1f9")
    assert first.name == "dbt_foundation-a30ebcaa" and not (first / PARSE_STATE).exists()
    (first / PARSE_STATE).write_bytes(b"state one")
    keep_parse_state(tmp_path, first)

    second = invocation_target(tmp_path, "dbt_downstream_of_gates", "a30ebcaa-d1f9")
    assert (second / PARSE_STATE).read_bytes() == b"state one"
    (second / PARSE_STATE).write_bytes(b"state two")
    keep_parse_state(tmp_path, second)
    again = invocation_target(tmp_path, "dbt_foundation", "a30ebcaa-d1f9")  # the same step twice in one run
    assert again != first and (again / PARSE_STATE).read_bytes() == b"state two"


def test_a_failed_parse_keeps_the_previous_state_and_old_folders_are_pruned(tmp_path):
    folders = [invocation_target(tmp_path, "step", f"run{i:05d}") for i in range(KEEP + 5)]
    (folders[0] / PARSE_STATE).write_bytes(b"kept")
    for i, folder in enumerate(folders):  # oldest first
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    keep_parse_state(tmp_path, folders[0])  # its state is kept, then the oldest folders beyond KEEP go
    keep_parse_state(tmp_path, folders[-1])  # no state produced (dbt failed before parsing): the last one stays
    assert (targets_dir(tmp_path) / PARSE_STATE).read_bytes() == b"kept"
    left = sorted(p for p in targets_dir(tmp_path).iterdir() if p.is_dir())
    assert left == sorted(folders[-KEEP:])
