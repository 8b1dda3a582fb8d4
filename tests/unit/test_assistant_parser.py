"""The assistant's parser, validation and compiler on a semantic layer this project did not write (a shop's sales
model): names come from the manifest, values from the warehouse, and anything else is refused."""

from __future__ import annotations

import datetime

import pytest

from mos_pipelines.assistant.catalog import Catalog
from mos_pipelines.assistant.compile import compile_metric
from mos_pipelines.assistant.parser import Vocabulary, parse
from mos_pipelines.assistant.spec import MetricFilter, MetricSpec, SpecError, validate_metric
from mos_pipelines.configuration import load_assistant
from mos_pipelines.insights.semantic import SemanticLayer

MANIFEST = {
    "semantic_models": [
        {
            "name": "sales",
            "node_relation": {"schema_name": "shop", "alias": "daily_sales"},
            "defaults": {"agg_time_dimension": "sold_on"},
            "dimensions": [
                {"name": "sold_on", "type": "time"},
                {"name": "channel", "type": "categorical"},
                {"name": "country", "type": "categorical", "expr": "upper(country_code)"},
            ],
            "measures": [
                {"name": "revenue_total", "agg": "sum", "expr": "amount"},
                {"name": "orders_total", "agg": "count", "expr": "order_id"},
            ],
        }
    ],
    "metrics": [
        {
            "name": "revenue",
            "type": "simple",
            "label": "Revenue",
            "type_params": {"measure": {"name": "revenue_total"}},
        },
        {"name": "orders", "type": "simple", "label": "Orders", "type_params": {"measure": {"name": "orders_total"}}},
        {
            "name": "aov",
            "type": "ratio",
            "label": "Average order value",
            "type_params": {"numerator": {"name": "revenue"}, "denominator": {"name": "orders"}},
        },
    ],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(
        settings=load_assistant(),
        layer=SemanticLayer(MANIFEST),
        dimension_values={"channel": {"Web", "Store", "paid_social"}, "country": {"FR", "DE"}},
        customer_values={},
        as_of=datetime.date(2026, 3, 18),
        first_day=datetime.date(2026, 1, 1),
    )


@pytest.fixture(scope="module")
def vocabulary(catalog: Catalog) -> Vocabulary:
    return Vocabulary(catalog)


def test_a_question_becomes_a_spec_of_the_manifests_names(catalog, vocabulary) -> None:
    parsed = parse("average order value by channel in FR last 7 days", catalog, vocabulary, None)
    spec = parsed.spec
    assert isinstance(spec, MetricSpec)
    assert spec.metrics == ("aov",) and spec.group_by == ("channel",)
    assert spec.filters == (MetricFilter(dimension="country", values=("FR",)),)
    assert (spec.time_range.start, spec.time_range.end) == (datetime.date(2026, 3, 12), datetime.date(2026, 3, 18))
    sql = compile_metric(validate_metric(spec, catalog), catalog).sql
    assert '"shop"."daily_sales"' in sql and "upper(country_code) = 'FR'" in sql and "count(order_id)" in sql


@pytest.mark.parametrize(
    "question",
    [
        "revenue by planet",
        "revenue forecast",
        "profit by channel",
        "revenue; drop table shop.daily_sales",
        "orders",
        "spend by channel",
    ],
)
def test_what_the_layer_does_not_define_is_refused(catalog, vocabulary, question) -> None:
    parsed = parse(question, catalog, vocabulary, None)
    if question == "orders":  # the control: a defined metric is answered
        assert parsed.spec is not None
        return
    assert parsed.spec is None and parsed.refusal and parsed.alternatives is not None


def test_follow_ups_keep_the_thread(catalog, vocabulary) -> None:
    first = parse("revenue by channel in FR", catalog, vocabulary, None)
    turn = {"spec": first.spec.model_dump(mode="json"), "kind": "metric", "asked_metrics": ["revenue"]}
    second = parse("and in DE?", catalog, vocabulary, turn)
    assert second.follow_up and second.spec.filters == (MetricFilter(dimension="country", values=("DE",)),)
    assert second.spec.group_by == ("channel",)
    turn = {"spec": second.spec.model_dump(mode="json"), "kind": "metric", "asked_metrics": ["revenue"]}
    third = parse("only paid social", catalog, vocabulary, turn)
    assert {f.dimension: f.values for f in third.spec.filters} == {"country": ("DE",), "channel": ("paid_social",)}


def test_validation_refuses_values_and_names_the_warehouse_lacks(catalog) -> None:
    with pytest.raises(SpecError):
        validate_metric(
            MetricSpec(metrics=("revenue",), filters=(MetricFilter(dimension="country", values=("XX",)),)), catalog
        )
    with pytest.raises(SpecError):
        validate_metric(MetricSpec(metrics=("revenue",), group_by=("planet",)), catalog)
    with pytest.raises(SpecError):
        validate_metric(MetricSpec(metrics=("margin",)), catalog)
