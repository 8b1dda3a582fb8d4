"""``ask``: a question -> a validated spec -> compiled SQL run read-only -> an ``Answer`` (logged, threaded)."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from mos_pipelines.access import PII_MASKS, Principal
from mos_pipelines.assistant import log as assistant_log
from mos_pipelines.assistant import threads
from mos_pipelines.assistant.answer import chart, describe_customers, describe_metric
from mos_pipelines.assistant.catalog import Catalog, cached_catalog
from mos_pipelines.assistant.compile import compile_customers, compile_metric
from mos_pipelines.assistant.execute import QueryTimeout, read_only, run
from mos_pipelines.assistant.parser import Parsed, Vocabulary, parse
from mos_pipelines.assistant.spec import CustomerSpec, MetricSpec, SpecError, validate_customers, validate_metric
from mos_pipelines.configuration import load_assistant
from mos_pipelines.configuration.assistant import AssistantSettings
from mos_pipelines.settings import Settings, get_settings
from mos_pipelines.warehouse import WarehouseError

REFUSAL = "I can't answer that; here is what I can: "


@dataclass(frozen=True)
class Answer:
    thread_id: str
    question: str
    kind: str  # metric | customers | refusal
    text: str
    spec: dict[str, Any]
    columns: list[str]
    rows: list[list]
    sql: str | None
    mf_query: str | None
    chart: dict[str, Any] | None
    alternatives: list[str]
    latency_ms: float
    model: str = "parser"
    cost_usd: float = 0.0
    reason: str | None = None  # why a question was refused
    truncated: bool = False
    params: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy / Decimal-like scalars
        try:
            return value.item()
        except (AttributeError, ValueError):
            pass
    if type(value).__name__ == "Decimal":
        return float(value)
    return value


_SETTINGS: dict[str, tuple[float, AssistantSettings]] = {}
# Thread and log writes wait here until the read-only connection is closed (the log opens its own write connection).
_PENDING: ContextVar[list[Callable[[], None]] | None] = ContextVar("assistant_pending", default=None)


def _deferred(function: Callable[..., Answer]) -> Callable[..., Answer]:
    def wrapper(*args: Any, **kwargs: Any) -> Answer:
        token = _PENDING.set([])
        try:
            return function(*args, **kwargs)
        finally:
            jobs = _PENDING.get() or []
            _PENDING.reset(token)
            for job in jobs:
                job()

    wrapper.__doc__, wrapper.__name__ = function.__doc__, function.__name__
    return wrapper


_VOCABULARIES: dict[int, Vocabulary] = {}


def _assistant_settings() -> AssistantSettings:
    """``config/assistant.yaml`` (and the override file), re-read at most every 5 s."""
    now = time.monotonic()
    found = _SETTINGS.get("s")
    if found is None or now - found[0] > 5:
        found = (now, load_assistant())
        _SETTINGS["s"] = found
    return found[1]


def _vocabulary(catalog: Catalog) -> Vocabulary:
    key = id(catalog)
    if key not in _VOCABULARIES:
        _VOCABULARIES.clear()
        _VOCABULARIES[key] = Vocabulary(catalog)
    return _VOCABULARIES[key]


@_deferred
def ask(
    question: str,
    *,
    principal: Principal,
    thread_id: str | None = None,
    settings: Settings | None = None,
    use_llm: bool = False,
    channel: str = "python",
) -> Answer:
    """Answer one question (see the package docstring). Never raises for a question it cannot answer: that is a
    refusal ``Answer``; a missing or locked warehouse is a refusal that says so."""
    started = time.perf_counter()
    settings = settings or get_settings()
    config = _assistant_settings()
    question = question if isinstance(question, str) else str(question)
    if thread_id is None:
        thread_id = threads.new_id()
    try:
        previous = threads.last_spec(settings, thread_id)
    except threads.ThreadError as exc:
        return _refusal(question, "-", str(exc), [], started, settings, principal, channel)
    model, cost = "parser", 0.0
    try:
        with read_only(settings.warehouse_path) as con:
            catalog = cached_catalog(con, settings.warehouse_path, config)
            vocabulary = _vocabulary(catalog)
            parsed: Parsed | None = None
            if use_llm:
                from mos_pipelines.assistant.llm_path import spec_from_llm

                parsed, model, cost = spec_from_llm(question, catalog, previous)
            if parsed is None:
                parsed = parse(question, catalog, vocabulary, previous)
                model = "parser" if model in ("parser", "offline") else f"parser (after {model})"
            if parsed.spec is None:
                return _refusal(
                    question,
                    thread_id,
                    parsed.refusal or "not understood",
                    parsed.alternatives,
                    started,
                    settings,
                    principal,
                    channel,
                    catalog=catalog,
                    model=model,
                    cost=cost,
                )
            return _answer(
                con, catalog, parsed, question, thread_id, principal, settings, started, channel, model, cost, previous
            )
    except WarehouseError as exc:
        return _refusal(question, thread_id, str(exc), [], started, settings, principal, channel)


def _answer(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    parsed: Parsed,
    question: str,
    thread_id: str,
    principal: Principal,
    settings: Settings,
    started: float,
    channel: str,
    model: str,
    cost: float,
    previous: dict[str, Any] | None,
) -> Answer:
    spec = parsed.spec
    limits = catalog.settings.limits

    def refuse(reason: str, **extra: Any) -> Answer:
        return _refusal(
            question, thread_id, reason, catalog.alternatives(), started, settings, principal, channel,
            catalog=catalog, model=model, cost=cost, **extra,
        )  # fmt: skip

    try:
        if isinstance(spec, MetricSpec):
            valid: MetricSpec | CustomerSpec = validate_metric(spec, catalog)
            compiled = compile_metric(valid, catalog)  # type: ignore[arg-type]
        else:
            assert isinstance(spec, CustomerSpec)
            valid = validate_customers(spec, catalog, principal)
            compiled = compile_customers(valid, catalog)
    except SpecError as exc:
        return refuse(str(exc))
    try:
        names, raw, truncated = run(con, compiled.sql, compiled.params, limits.max_rows, limits.statement_timeout_s)
    except (QueryTimeout, duckdb.Error) as exc:
        return refuse(f"the query failed: {str(exc).splitlines()[0]}", sql=compiled.sql)
    rows = [list(r) for r in raw]
    masked = False
    if compiled.pii and not principal.can("see_pii"):
        for i, name in enumerate(names):
            kind = compiled.pii.get(name)
            if kind:
                masked = True
                for r in rows:
                    r[i] = PII_MASKS[kind](None if r[i] is None else str(r[i]))
    if isinstance(valid, MetricSpec):
        text = describe_metric(valid, names, rows, catalog, truncated)
        picture = chart(valid, names)
        kind = "metric"
    else:
        text = describe_customers(valid, rows, truncated, masked)
        picture, kind = None, "customers"
    answer = Answer(
        thread_id=thread_id,
        question=question,
        kind=kind,
        text=text,
        spec=valid.model_dump(mode="json"),
        columns=names,
        rows=rows,
        sql=compiled.sql,
        mf_query=compiled.mf_query,
        chart=picture,
        alternatives=[],
        latency_ms=(time.perf_counter() - started) * 1000.0,
        model=model,
        cost_usd=cost,
        truncated=truncated,
        params=list(compiled.params),
    )
    answer = _plain_answer(answer)
    asked = spec.metrics if isinstance(spec, MetricSpec) else None
    _finish(
        settings,
        principal,
        answer,
        channel,
        catalog,
        turn={
            "question": question,
            "kind": kind,
            "spec": spec.model_dump(mode="json"),
            "asked_metrics": list(asked) if asked else None,
        },
    )
    return answer


def _plain_answer(answer: Answer) -> Answer:
    return Answer(**{**answer.__dict__, "rows": _plain(answer.rows)})


def _refusal(
    question: str,
    thread_id: str,
    reason: str,
    alternatives: list[str],
    started: float,
    settings: Settings,
    principal: Principal,
    channel: str,
    catalog: Catalog | None = None,
    model: str = "parser",
    cost: float = 0.0,
    sql: str | None = None,
    log_it: bool = True,
) -> Answer:
    alternatives = alternatives or (catalog.alternatives() if catalog else [])
    text = (
        f"{REFUSAL}{'; '.join(alternatives) if alternatives else 'questions about the metrics of the semantic layer'}"
    )
    text += f". ({reason})"
    answer = Answer(
        thread_id=thread_id,
        question=question[:2000],
        kind="refusal",
        text=text,
        spec={},
        columns=[],
        rows=[],
        sql=None,
        mf_query=None,
        chart=None,
        alternatives=alternatives,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        model=model,
        cost_usd=cost,
        reason=reason,
    )
    if log_it:
        _finish(
            settings,
            principal,
            answer,
            channel,
            catalog,
            turn={"question": question[:2000], "kind": "refusal"},
            failed_sql=sql,
        )
    else:
        _finish(settings, principal, answer, channel, catalog, turn=None)
    return answer


def _finish(
    settings: Settings,
    principal: Principal,
    answer: Answer,
    channel: str,
    catalog: Catalog | None,
    turn: dict[str, Any] | None,
    failed_sql: str | None = None,
) -> None:
    """Thread and log (after the read-only connection is closed); neither may fail the answer."""
    pending = _PENDING.get()
    job = lambda: _write(settings, principal, answer, channel, catalog, turn, failed_sql)  # noqa: E731
    if pending is None:
        job()
    else:
        pending.append(job)


def _write(
    settings: Settings,
    principal: Principal,
    answer: Answer,
    channel: str,
    catalog: Catalog | None,
    turn: dict[str, Any] | None,
    failed_sql: str | None,
) -> None:
    if turn is not None and answer.thread_id != "-":
        try:
            keep = catalog.settings.limits.thread_turns if catalog else 10
            threads.append(settings, answer.thread_id, turn, keep)
        except (OSError, threads.ThreadError):
            pass
    try:
        assistant_log.record(
            settings,
            {
                "logged_at": datetime.datetime.now(datetime.UTC).replace(tzinfo=None),
                "thread_id": answer.thread_id,
                "reader": principal.id,
                "role": principal.role,
                "channel": channel,
                "question": answer.question[:2000],
                "kind": answer.kind,
                "spec": answer.spec,
                "sql": answer.sql or failed_sql,
                "rows_returned": len(answer.rows),
                "latency_ms": answer.latency_ms,
                "model": answer.model,
                "cost_usd": answer.cost_usd,
                "refusal": answer.reason,
            },
        )
    except Exception:  # noqa: BLE001 - the log never fails an answer
        pass


@_deferred
def spec_answer(
    spec: MetricSpec | CustomerSpec, principal: Principal, settings: Settings | None = None, channel: str = "python"
) -> Answer:
    """Answer a spec given directly (the MCP tools, scripts): the same validation, execution, masking and log."""
    started = time.perf_counter()
    settings = settings or get_settings()
    config = _assistant_settings()
    question = f"[spec] {spec.model_dump_json()}"
    try:
        with read_only(settings.warehouse_path) as con:
            catalog = cached_catalog(con, settings.warehouse_path, config)
            return _answer(
                con, catalog, Parsed(spec), question, "-", principal, settings, started, channel, "spec", 0.0, None
            )
    except WarehouseError as exc:
        return _refusal(question, "-", str(exc), [], started, settings, principal, channel)
