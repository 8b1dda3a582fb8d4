"""The dbt Python model int_phone_numbers__e164, run as dbt-duckdb runs it (its `model(dbt, session)` on a DuckDB
connection): a number the last build parsed with the same library version keeps that result; another version's rows
are parsed again."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pandas as pd

MODEL = Path(__file__).parents[2] / "dbt_project/models/intermediate/identity/int_phone_numbers__e164.py"


def _module():
    spec = importlib.util.spec_from_file_location("int_phone_numbers__e164", MODEL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(module, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    dbt = SimpleNamespace(
        config=lambda **_: None,
        ref=lambda name: con.table(f"intermediate.{name}"),
        this=SimpleNamespace(schema="intermediate", identifier="int_phone_numbers__e164"),
    )
    frame = module.model(dbt, con)
    con.register("built", frame)
    con.execute("create or replace table intermediate.int_phone_numbers__e164 as select * from built")
    con.unregister("built")
    return frame.sort_values(["phone_raw"]).reset_index(drop=True)


def test_phone_numbers_parsed_by_the_same_version_are_reused_and_others_parsed_again() -> None:
    module = _module()
    con = duckdb.connect()
    con.execute("create schema intermediate")
    con.execute(
        "create table intermediate.int_crm_contacts__unioned as select * from (values "
        "('030 1234567', 'DE'), ('+44 20 7946 0958', null), ('0000000000', 'US'), (null, 'FR')) as t(phone, country_code)"
    )
    first = _build(module, con)
    assert dict(
        zip(first["phone_raw"], first["phone_e164"].astype(object).where(first["phone_e164"].notna(), None))
    ) == {
        "030 1234567": "+49301234567",
        "+44 20 7946 0958": "+442079460958",
        "0000000000": None,
    }
    version = first["parsed_with"].iloc[0]
    assert version.startswith("phonenumbers ") and first["parsed_with"].nunique() == 1
    # the stored result is what a build with the same version takes (a sentinel no parse gives)
    con.execute(
        "update intermediate.int_phone_numbers__e164 set phone_e164 = '+490000' where phone_raw = '030 1234567'"
    )
    con.execute("insert into intermediate.int_crm_contacts__unioned values ('+1 212 555 0100', 'US')")
    second = _build(module, con)
    assert second.set_index("phone_raw").loc["030 1234567", "phone_e164"] == "+490000"
    assert second.set_index("phone_raw").loc["+1 212 555 0100", "phone_e164"] == "+12125550100"
    # rows another version parsed are parsed again
    con.execute("update intermediate.int_phone_numbers__e164 set parsed_with = 'phonenumbers 0.0'")
    third = _build(module, con)
    assert third.set_index("phone_raw").loc["030 1234567", "phone_e164"] == "+49301234567"
    assert (third["parsed_with"] == version).all()
