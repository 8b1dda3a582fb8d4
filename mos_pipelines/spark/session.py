"""The Spark session a Spark build runs in: the `spark` target of dbt_project/profiles.yml, read once, so dbt-spark's
`session` connection and the Python steps beside it share one JVM, one catalog (a Derby metastore) and one warehouse
folder, all under $MOS_HOME/spark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from mos_pipelines.settings import DBT_PROJECT_DIR

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PROFILE = "mos_pipelines"
TARGET = "spark"


class SparkUnavailable(RuntimeError):
    """pyspark (and dbt-spark) or Java are missing: the Spark target cannot run on this machine."""


def spark_target(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Any]:
    """The `spark` output of the project's profile, with its `env_var` calls rendered as dbt renders them."""

    def env_var(name: str, default: str | None = None) -> str:
        value = os.environ.get(name, default)
        if value is None:
            raise KeyError(f"{project_dir / 'profiles.yml'}: env var {name} is not set")
        return value

    text = (project_dir / "profiles.yml").read_text()
    profile = yaml.safe_load(jinja2.Template(text).render(env_var=env_var))
    try:
        return dict(profile[PROFILE]["outputs"][TARGET])
    except KeyError as exc:
        raise KeyError(f"{project_dir / 'profiles.yml'}: no output {TARGET!r} in profile {PROFILE!r}") from exc


def duckdb_target(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """The profile's default target: the DuckDB warehouse."""
    profile = yaml.safe_load((project_dir / "profiles.yml").read_text())
    return str(profile[PROFILE]["target"])


def spark_conf(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, str]:
    """The Spark configuration of the `spark` target (its `server_side_parameters`), with ANSI mode off as dbt-spark
    sets it."""
    conf = {str(k): str(v) for k, v in (spark_target(project_dir).get("server_side_parameters") or {}).items()}
    conf["spark.sql.ansi.enabled"] = "false"
    return conf


def check_available() -> None:
    """Raise SparkUnavailable, saying what is missing, unless pyspark, dbt-spark and Java are all here (no JVM is
    started)."""
    import importlib.util

    for module, what in (("pyspark", "pyspark 3.5"), ("dbt.adapters.spark", "dbt-spark[session]")):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            raise SparkUnavailable(f"{what} is not installed: `pip install -e '.[spark]'` (or `make test-spark`)")
    if not (os.environ.get("JAVA_HOME") or _on_path("java")):
        raise SparkUnavailable("Spark needs Java 17 (`java` on PATH or JAVA_HOME); none was found")


def spark_session(project_dir: Path = DBT_PROJECT_DIR) -> SparkSession:
    """The process's Spark session, created with the `spark` target's configuration when there is none yet (dbt-spark
    then reuses it: `getOrCreate`). Raises SparkUnavailable, saying what is missing."""
    check_available()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_conf(project_dir).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _on_path(name: str) -> bool:
    return any((Path(folder) / name).exists() for folder in os.environ.get("PATH", "").split(os.pathsep) if folder)
