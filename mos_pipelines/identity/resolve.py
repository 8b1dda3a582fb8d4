"""Records in, entities out: probabilistic matching followed by non-chaining clustering."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.identity.clustering import ClusterSettings, average_linkage, candidate_components
from mos_pipelines.identity.matching import (
    FittedModel,
    MatchSettings,
    add_derived_columns,
    compare_pairs,
    fit_and_score,
    register_records,
    score,
)
from mos_pipelines.warehouse import scalar


@dataclass
class Resolution:
    """Cluster per record, the links behind them, and the fitted model."""

    clusters: pd.DataFrame  # record id column, cluster_id (the smallest record id of the cluster)
    links: pd.DataFrame  # record_id_l, record_id_r, match_probability, match_weight (≥ link threshold)
    model: FittedModel
    seconds: dict[str, float] = field(default_factory=dict)


def _complete_components(
    con: duckdb.DuckDBPyConnection, settings: MatchSettings, model: FittedModel, labels: pd.DataFrame, max_size: int
) -> None:
    """Score every unscored pair inside components of 3..max_size records into ``_mx_extra_scored``."""
    con.register("_mx_labels", labels)
    con.execute(
        f"""create or replace temp table _mx_extra as
        with sized as (
            select _rid, component, count(*) over (partition by component) as size from _mx_labels
        )
        select l._rid as id_l, r._rid as id_r
        from sized l join sized r on l.component = r.component and l._rid < r._rid
        where l.size between 3 and {int(max_size)}
        except
        select id_l, id_r from _mx_scored"""
    )
    con.unregister("_mx_labels")
    compare_pairs(con, settings, "_mx_extra", "_mx_extra_compared")
    score(con, settings, model, "_mx_extra_compared", "_mx_extra_scored")


def resolve(
    records: pd.DataFrame | str,
    id_column: str,
    match: MatchSettings,
    cluster: ClusterSettings,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Resolution:
    """Match and cluster ``records`` (one row per record, ``id_column`` unique): a frame, or the name of a table or
    view on ``con`` (with a ``spark.duckdb_sql.SparkConnection``, a Spark table: the records' attributes then never
    enter this process)."""
    own = con is None
    con = con or duckdb.connect()
    try:
        register_records(con, records, id_column)
        add_derived_columns(con, match.derived_columns)
        return resolve_registered(con, id_column, match, cluster)
    finally:
        if own:
            con.close()


def resolve_registered(
    con: duckdb.DuckDBPyConnection, id_column: str, match: MatchSettings, cluster: ClusterSettings
) -> Resolution:
    """Match and cluster the records already in ``_mx_records`` (see ``matching.register_records``), whose
    derived columns are already added."""
    seconds: dict[str, float] = {}
    model = fit_and_score(con, match)
    seconds.update(model.seconds)
    t0 = time.perf_counter()
    n = scalar(con, "select count(*) from _mx_records")
    links = con.execute(
        "select id_l, id_r from _mx_scored where match_probability >= ?", [cluster.candidate_threshold]
    ).df()
    labels = candidate_components(n, links["id_l"].to_numpy(), links["id_r"].to_numpy())
    label_frame = pd.DataFrame({"_rid": range(n), "component": labels})
    _complete_components(con, match, model, label_frame, cluster.max_complete_component)
    con.register("_mx_labels", label_frame)
    pairs = con.execute(
        """select s.id_l, s.id_r, s.match_probability as p
        from (select id_l, id_r, match_probability, n_informative from _mx_scored
              union all
              select id_l, id_r, match_probability, n_informative from _mx_extra_scored) s
        join _mx_labels a on a._rid = s.id_l
        join _mx_labels b on b._rid = s.id_r
        where a.component = b.component and s.n_informative > 0
        order by s.id_l, s.id_r"""
    ).df()
    con.unregister("_mx_labels")
    seconds["complete_components"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    representative = average_linkage(pairs, cluster)
    seconds["cluster"] = time.perf_counter() - t0
    ids = con.execute(f"select _rid, {id_column} from _mx_records order by _rid").df()[id_column].to_numpy()
    rep = np.arange(n)
    if representative:
        rep[np.fromiter(representative.keys(), dtype=np.int64, count=len(representative))] = np.fromiter(
            representative.values(), dtype=np.int64, count=len(representative)
        )
    clusters = pd.DataFrame({id_column: ids, "cluster_id": ids[rep]})
    scored_links = con.execute(
        f"""select l.{id_column} as record_id_l, r.{id_column} as record_id_r, s.match_probability, s.match_weight
        from _mx_scored s join _mx_records l on l._rid = s.id_l join _mx_records r on r._rid = s.id_r
        where s.match_probability >= ? order by 1, 2""",
        [cluster.link_threshold],
    ).df()
    return Resolution(clusters=clusters, links=scored_links, model=model, seconds=seconds)
