"""The CRM API: customers, their attributes, notes and relationships, and webhook subscriptions.

``router(settings)`` is mounted by the web app at ``/api/v1``. Every request carries ``Authorization: Bearer
<token>`` (``mos_pipelines.access``): reading needs a known user, writing ``write_crm``; names, emails and phones are
masked for a role without ``see_pii``. Writes go to the operational store (``crm.store``) in one transaction with
their outbox event; reads of warehouse customers open ``marts.dim_customers`` read-only. Reads and writes return an
``ETag``; PATCH and DELETE require ``If-Match`` (428 without, 412 when stale); POST honours ``Idempotency-Key``
(the same key and body give the stored answer, the same key with another body a 422 naming the header).
"""

import datetime
import hashlib
import json
import secrets
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mos_pipelines.access import PII_MASKS, AccessDenied, Principal, authenticate, bearer
from mos_pipelines.configuration import load_access
from mos_pipelines.crm import customers as cust
from mos_pipelines.crm import models as m
from mos_pipelines.crm import store as st
from mos_pipelines.settings import Settings, get_settings

IF_MATCH = "Send If-Match with the ETag of your last read of this resource (a write without it could overwrite "
IF_MATCH += "someone else's change)."


class _Route(APIRoute):
    """Turns the domain's errors into HTTP answers (a router cannot register exception handlers of its own)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except cust.WarehouseBusy as exc:
                return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
            except AccessDenied as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)
            except cust.Absorbed as exc:  # 308 keeps the method and body: a client's retry lands on the customer
                path = request.url.path.replace(f"/customers/{exc.crm_id}", f"/customers/{exc.customer_id}", 1)
                location = str(request.url.replace(path=path))
                return JSONResponse({"detail": str(exc), "customer_id": exc.customer_id}, 308, {"Location": location})

        return handler


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.datetime | datetime.date) else value


def _plain(row: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row._mapping.items() if k not in drop}


def _problem(status: int, loc: list[str], msg: str, kind: str) -> HTTPException:
    return HTTPException(status, detail=[{"loc": loc, "msg": msg, "type": kind}])


def _check_if_match(if_match: str | None, current: str) -> None:
    if if_match is None:
        raise _problem(428, ["header", "If-Match"], IF_MATCH, "precondition_required")
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in tags and current not in tags:
        raise _problem(
            412,
            ["header", "If-Match"],
            f"stale: the resource changed since your read (its ETag is now {current}); read it again and retry",
            "precondition_failed",
        )


def _request_hash(method: str, path: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([method, path, body], sort_keys=True, default=str).encode()).hexdigest()


class _Idempotency:
    """The stored answer of a POST with an Idempotency-Key, read and written in the POST's transaction."""

    def __init__(self, conn: Connection, principal: Principal, key: str | None, request: Request, body: Any) -> None:
        self.conn, self.principal, self.key = conn, principal, key
        self.method, self.path = request.method, request.url.path
        self.hash = _request_hash(self.method, self.path, body.model_dump(mode="json") if body is not None else {})

    def replay(self) -> JSONResponse | None:
        if not self.key:
            return None
        if len(self.key) > 255:
            raise _problem(422, ["header", "Idempotency-Key"], "at most 255 characters", "string_too_long")
        t = st.idempotency_keys
        row = self.conn.execute(sa.select(t).where(t.c.principal_id == self.principal.id, t.c.key == self.key)).first()
        if row is None:
            return None
        if row.request_hash != self.hash:
            raise _problem(
                422,
                ["header", "Idempotency-Key"],
                f"Idempotency-Key {self.key!r} was already used for another request ({row.method} {row.path} with "
                "another body); use a new key for a new request",
                "idempotency_key_reused",
            )
        headers = {"Idempotent-Replayed": "true"}
        if row.etag:
            headers["ETag"] = row.etag
        return JSONResponse(row.response, status_code=row.status_code, headers=headers)

    def store(self, status_code: int, response: Any, etag: str | None) -> None:
        if self.key:
            self.conn.execute(
                st.idempotency_keys.insert().values(
                    principal_id=self.principal.id,
                    key=self.key,
                    request_hash=self.hash,
                    method=self.method,
                    path=self.path,
                    status_code=status_code,
                    response=json.loads(json.dumps(response, default=str)),
                    etag=etag,
                    created_at=st.utcnow(),
                )
            )


def _mask(customer: dict[str, Any], principal: Principal) -> dict[str, Any]:
    if principal.can("see_pii"):
        return customer
    return {k: PII_MASKS[cust.PII_FIELDS[k]](v) if k in cust.PII_FIELDS else v for k, v in customer.items()}


def _cas(conn: Connection, table: sa.Table, key_column: str, key: str, version: int, values: dict[str, Any]) -> bool:
    """Update a row only if it still has ``version`` (optimistic concurrency); True when it did."""
    result = conn.execute(
        table.update()
        .where(table.c[key_column] == key, table.c.version == version)
        .values(**values, version=version + 1, updated_at=st.utcnow())
    )
    return result.rowcount == 1


def _settable(table: sa.Table, changes: dict[str, Any]) -> dict[str, Any]:
    """The PATCH's changes, or a 422 naming a field sent as null that cannot be empty."""
    for name, value in changes.items():
        if value is None and name in table.c and not table.c[name].nullable:
            raise _problem(422, ["body", name], f"{name} cannot be null (leave it out to keep it)", "null_not_allowed")
    return changes


def _lost_race(current: str) -> HTTPException:
    return _problem(
        412,
        ["header", "If-Match"],
        f"stale: another write to this resource committed first (ETag was {current}); read it again and retry",
        "precondition_failed",
    )


def _write_customer_record(
    conn: Connection, customer_id: str, record: dict[str, Any] | None, current: str, values: dict[str, Any]
) -> None:
    """Write the store's record of a customer: the first edit of a warehouse customer inserts it (a concurrent first
    edit loses on the primary key), a later one updates it only at the version read; a lost race is a 412."""
    if record is None:
        now = st.utcnow()
        try:
            with conn.begin_nested():
                conn.execute(
                    st.customers.insert().values(
                        customer_id=customer_id, source="warehouse", version=1, created_at=now, updated_at=now, **values
                    )
                )
        except IntegrityError as exc:
            raise _lost_race(current) from exc
    elif not _cas(conn, st.customers, "customer_id", customer_id, record["version"], values):
        raise _lost_race(current)


def _changed_event_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    return sorted(f for f in cust.FIELDS if (before or {}).get(f) != after.get(f))


def router(settings: Settings | None = None) -> APIRouter:
    """The CRM API's routes (mount with ``app.include_router(router(settings), prefix="/api/v1")``)."""
    settings = settings or get_settings()
    access = load_access()
    warehouse = cust.WarehouseSource(settings.mos_home)
    db = st.Store.open(settings)
    api = APIRouter(route_class=_Route)

    def who(authorization: str | None = Header(None, description="Bearer <token>")) -> Principal:
        return authenticate(bearer(authorization), access)

    def writer(principal: Principal = Depends(who)) -> Principal:
        principal.require("write_crm", "change CRM records")
        return principal

    def _customer_or_404(conn: Connection, customer_id: str) -> tuple[dict[str, Any], Any]:
        customer, record = cust.get(conn, warehouse, customer_id)
        if customer is not None and record is not None and record["source"] == "crm":
            into = cust.absorbed_into(warehouse, customer_id)
            if into is not None:  # a build's identity made this person part of a warehouse customer
                raise cust.Absorbed(customer_id, into)
        if customer is None:
            if record is not None and record["erased_at"] is not None:
                raise HTTPException(410, f"customer {customer_id} was erased (erasure requested {record['erased_at']})")
            raise HTTPException(404, f"no customer {customer_id}")
        return customer, record

    def _respond(response: Response, body: dict[str, Any], tag: str) -> dict[str, Any]:
        response.headers["ETag"] = tag
        return body

    # ---------------------------------------------------------------- customers
    tags: list[str | Enum] = ["customers"]

    @api.get(
        "/customers", tags=tags, summary="List customers (filters, cursor pagination)", response_model=m.CustomerPage
    )
    def list_customers(
        principal: Principal = Depends(who),
        limit: int = Query(50, ge=1, le=500),
        cursor: str | None = Query(None, description="next_cursor of the previous page"),
        email: str | None = None,
        company: str | None = None,
        job_title: str | None = None,
        country_code: str | None = None,
        city: str | None = None,
        last_name: str | None = None,
    ) -> dict[str, Any]:
        given = {
            "email": email,
            "company": company,
            "job_title": job_title,
            "country_code": country_code,
            "city": city,
            "last_name": last_name,
        }
        filters = {k: v for k, v in given.items() if v is not None}
        try:
            after = cust.decode_cursor(cursor, filters) if cursor else None
        except cust.BadCursor as exc:
            raise _problem(422, ["query", "cursor"], str(exc), "value_error") from exc
        with db.read() as conn:
            rows, more = cust.list_page(conn, warehouse, filters, after, limit)
        return {
            "items": [_mask(r, principal) for r in rows],
            "next_cursor": cust.encode_cursor(rows[-1]["customer_id"], filters) if more and rows else None,
            "has_more": more,
        }

    @api.get("/customers/{customer_id}", tags=tags, summary="Read a customer", response_model=m.Customer)
    def read_customer(customer_id: str, response: Response, principal: Principal = Depends(who)) -> dict[str, Any]:
        with db.read() as conn:
            customer, _ = _customer_or_404(conn, customer_id)
        return _respond(response, _mask(customer, principal), cust.etag(customer))

    @api.post(
        "/customers",
        tags=tags,
        summary="Create a customer",
        status_code=201,
        response_model=m.Customer,
        responses={422: {"description": "A field is invalid, or the Idempotency-Key was used for another body"}},
    )
    def create_customer(
        body: m.CustomerCreate,
        request: Request,
        response: Response,
        principal: Principal = Depends(writer),
        idempotency_key: str | None = Header(None, description="Retry-safe: the same key and body, the same answer"),
    ) -> Any:
        with db.write() as conn:
            idem = _Idempotency(conn, principal, idempotency_key, request, body)
            if (stored := idem.replay()) is not None:
                return stored
            now = st.utcnow()
            customer_id = st.new_id("crm")
            fields = body.model_dump(mode="json", exclude_none=True)
            conn.execute(
                st.customers.insert().values(
                    customer_id=customer_id,
                    source="crm",
                    fields=fields,
                    updated_by=principal.id,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            customer, _ = cust.get(conn, warehouse, customer_id)
            assert customer is not None
            st.emit(
                conn,
                "customer.created",
                customer_id,
                {"customer": customer, "changed_fields": sorted(fields)},
                principal.id,
            )
            tag = cust.etag(customer)
            idem.store(201, _mask(customer, principal), tag)
        return _respond(response, _mask(customer, principal), tag)

    @api.patch(
        "/customers/{customer_id}",
        tags=tags,
        summary="Edit a customer (edits win survivorship)",
        response_model=m.Customer,
    )
    def patch_customer(
        customer_id: str,
        body: m.CustomerPatch,
        response: Response,
        principal: Principal = Depends(writer),
        if_match: str | None = Header(None, description="The ETag of your last read"),
    ) -> dict[str, Any]:
        changes = body.model_dump(mode="json", exclude_unset=True)
        with db.write() as conn:
            before, record = _customer_or_404(conn, customer_id)
            current = cust.etag(before)
            _check_if_match(if_match, current)
            fields = changes if record is None else {**record["fields"], **changes}
            _write_customer_record(conn, customer_id, record, current, {"fields": fields, "updated_by": principal.id})
            after, _ = cust.get(conn, warehouse, customer_id)
            assert after is not None
            changed = _changed_event_fields(before, after)
            if changed:
                st.emit(
                    conn,
                    "customer.updated",
                    customer_id,
                    {
                        "customer": after,
                        "changed_fields": changed,
                        "previous": {f: before.get(f) for f in changed},
                    },
                    principal.id,
                )
        return _respond(response, _mask(after, principal), cust.etag(after))

    @api.delete(
        "/customers/{customer_id}",
        tags=tags,
        status_code=202,
        response_model=m.ErasureRequest,
        summary="Erase a customer: records an erasure request (the next build removes the person everywhere)",
    )
    def delete_customer(
        customer_id: str,
        principal: Principal = Depends(writer),
        if_match: str | None = Header(None, description="The ETag of your last read"),
    ) -> dict[str, Any]:
        with db.write() as conn:
            before, record = _customer_or_404(conn, customer_id)
            current = cust.etag(before)
            _check_if_match(if_match, current)
            now = st.utcnow()
            _write_customer_record(
                conn, customer_id, record, current, {"fields": {}, "erased_at": now, "updated_by": principal.id}
            )
            request_id = st.new_id("era")
            conn.execute(
                st.erasure_requests.insert().values(
                    request_id=request_id,
                    customer_id=customer_id,
                    requested_by=principal.id,
                    status="requested",
                    requested_at=now,
                )
            )
            # The person's data leaves the store now; undelivered events about them carry no personal data.
            conn.execute(st.attributes.delete().where(st.attributes.c.customer_id == customer_id))
            conn.execute(st.notes.delete().where(st.notes.c.customer_id == customer_id))
            conn.execute(
                st.relationships.delete().where(
                    sa.or_(
                        st.relationships.c.from_customer_id == customer_id,
                        st.relationships.c.to_customer_id == customer_id,
                    )
                )
            )
            conn.execute(
                st.events.update()
                .where(st.events.c.customer_id == customer_id)
                .values(data={"customer_id": customer_id, "erased": True})
            )
            st.emit(
                conn,
                "customer.deleted",
                customer_id,
                {"customer_id": customer_id, "erasure_request_id": request_id},
                principal.id,
            )
            row = conn.execute(
                sa.select(st.erasure_requests).where(st.erasure_requests.c.request_id == request_id)
            ).one()
        return _plain(row, ("reason",))

    @api.get(
        "/erasure-requests",
        tags=tags,
        summary="Erasure requests and whether a build applied them",
        response_model=list[m.ErasureRequest],
    )
    def list_erasures(principal: Principal = Depends(writer)) -> list[dict[str, Any]]:
        with db.read() as conn:
            rows = conn.execute(sa.select(st.erasure_requests).order_by(st.erasure_requests.c.requested_at))
            return [_plain(r, ("reason",)) for r in rows]

    @api.get(
        "/erasure-requests/{request_id}",
        tags=tags,
        summary="One erasure request: its status and, once a build applied it, the rows removed per table",
        response_model=m.ErasureRequest,
    )
    def get_erasure(request_id: str, principal: Principal = Depends(writer)) -> dict[str, Any]:
        with db.read() as conn:
            row = conn.execute(
                sa.select(st.erasure_requests).where(st.erasure_requests.c.request_id == request_id)
            ).first()
            if row is None:
                raise HTTPException(404, f"no erasure request {request_id}")
            result = conn.execute(
                sa.select(st.erasure_results).where(st.erasure_results.c.request_id == request_id)
            ).first()
        return {**_plain(row, ("reason",)), "removed": dict(result.removed) if result is not None else None}

    # ------------------------------------------------- attributes, notes, relationships
    def _sub_resource(
        *,
        name: str,
        table: sa.Table,
        key: str,
        model: type,
        create_model: type,
        patch_model: type,
        customer_column: str,
        make: Callable[[Any, str, Principal], dict[str, Any]],
        event: Callable[[Connection, dict[str, Any], dict[str, Any] | None, Principal], None] | None,
        also_listed_by: str | None = None,
    ) -> None:
        tag: list[str | Enum] = [name]
        plural = f"{name}s"

        def _row(conn: Connection, item_id: str) -> dict[str, Any]:
            row = conn.execute(sa.select(table).where(table.c[key] == item_id)).first()
            if row is None:
                raise HTTPException(404, f"no {name} {item_id}")
            return _plain(row, ("updated_by",))

        @api.get(
            f"/customers/{{customer_id}}/{plural}",
            tags=tag,
            summary=f"List a customer's {plural}",
            response_model=list[model],  # type: ignore[valid-type]
        )
        def list_items(customer_id: str, principal: Principal = Depends(who)) -> list[dict[str, Any]]:
            with db.read() as conn:
                _customer_or_404(conn, customer_id)
                where = table.c[customer_column] == customer_id
                if also_listed_by:
                    where = sa.or_(where, table.c[also_listed_by] == customer_id)
                rows = conn.execute(sa.select(table).where(where).order_by(table.c.created_at, table.c[key]))
                return [_plain(r, ("updated_by",)) for r in rows]

        @api.post(
            f"/customers/{{customer_id}}/{plural}",
            tags=tag,
            summary=f"Add a {name}",
            status_code=201,
            response_model=model,
        )
        def create_item(
            customer_id: str,
            body: create_model,  # type: ignore[valid-type]
            request: Request,
            response: Response,
            principal: Principal = Depends(writer),
            idempotency_key: str | None = Header(None),
        ) -> Any:
            with db.write() as conn:
                idem = _Idempotency(conn, principal, idempotency_key, request, body)
                if (stored := idem.replay()) is not None:
                    return stored
                _customer_or_404(conn, customer_id)
                values = make(body, customer_id, principal)
                if name == "relationship" and not cust.exists(conn, warehouse, values["to_customer_id"]):
                    raise _problem(
                        422, ["body", "to_customer_id"], f"no customer {values['to_customer_id']}", "not_found"
                    )
                item_id = st.new_id({"attribute": "att", "note": "not", "relationship": "rel"}[name])
                now = st.utcnow()
                try:
                    with conn.begin_nested():
                        conn.execute(
                            table.insert().values(**{key: item_id}, **values, version=1, created_at=now, updated_at=now)
                        )
                except IntegrityError as exc:
                    raise _problem(
                        409,
                        ["body", "name"],
                        f"{customer_id} already has a {name} named {values.get('name')!r}: PATCH it instead",
                        "conflict",
                    ) from exc
                item = _row(conn, item_id)
                if event:
                    event(conn, item, None, principal)
                etag = cust.etag(item)
                idem.store(201, item, etag)
            return _respond(response, item, etag)

        @api.get(f"/{plural}/{{item_id}}", tags=tag, summary=f"Read a {name}", response_model=model)
        def read_item(item_id: str, response: Response, principal: Principal = Depends(who)) -> dict[str, Any]:
            with db.read() as conn:
                item = _row(conn, item_id)
            return _respond(response, item, cust.etag(item))

        @api.patch(f"/{plural}/{{item_id}}", tags=tag, summary=f"Edit a {name}", response_model=model)
        def patch_item(
            item_id: str,
            body: patch_model,  # type: ignore[valid-type]
            response: Response,
            principal: Principal = Depends(writer),
            if_match: str | None = Header(None),
        ) -> dict[str, Any]:
            changes = _settable(table, body.model_dump(mode="json", exclude_unset=True))  # type: ignore[attr-defined]
            with db.write() as conn:
                before = _row(conn, item_id)
                current = cust.etag(before)
                _check_if_match(if_match, current)
                if "updated_by" in table.c:
                    changes["updated_by"] = principal.id
                if not _cas(conn, table, key, item_id, before["version"], changes):
                    raise _lost_race(current)
                after = _row(conn, item_id)
                if event and name == "attribute":
                    event(conn, after, before, principal)
            return _respond(response, after, cust.etag(after))

        @api.delete(f"/{plural}/{{item_id}}", tags=tag, summary=f"Delete a {name}", status_code=204)
        def delete_item(
            item_id: str, principal: Principal = Depends(writer), if_match: str | None = Header(None)
        ) -> Response:
            with db.write() as conn:
                before = _row(conn, item_id)
                current = cust.etag(before)
                _check_if_match(if_match, current)
                result = conn.execute(
                    table.delete().where(table.c[key] == item_id, table.c.version == before["version"])
                )
                if result.rowcount != 1:
                    raise _lost_race(current)
                if event and name == "attribute":
                    event(conn, {**before, "value": None, "deleted": True}, before, principal)
            return Response(status_code=204)

    def _attribute_event(
        conn: Connection, item: dict[str, Any], before: dict[str, Any] | None, principal: Principal
    ) -> None:
        st.emit(
            conn,
            "attribute.changed",
            item["customer_id"],
            {
                "attribute": item,
                "name": item["name"],
                "value": item.get("value"),
                "previous": None if before is None else before.get("value"),
                "changed_fields": [item["name"]],
            },
            principal.id,
        )

    def _note_event(
        conn: Connection, item: dict[str, Any], before: dict[str, Any] | None, principal: Principal
    ) -> None:
        st.emit(conn, "note.created", item["customer_id"], {"note": item}, principal.id)

    _sub_resource(
        name="attribute",
        table=st.attributes,
        key="attribute_id",
        model=m.Attribute,
        create_model=m.AttributeCreate,
        patch_model=m.AttributePatch,
        customer_column="customer_id",
        make=lambda b, c, p: {**b.model_dump(mode="json"), "customer_id": c, "updated_by": p.id},
        event=_attribute_event,
    )
    _sub_resource(
        name="note",
        table=st.notes,
        key="note_id",
        model=m.Note,
        create_model=m.NoteCreate,
        patch_model=m.NotePatch,
        customer_column="customer_id",
        make=lambda b, c, p: {"body": b.body, "customer_id": c, "author": p.id},
        event=_note_event,
    )
    _sub_resource(
        name="relationship",
        table=st.relationships,
        key="relationship_id",
        model=m.Relationship,
        create_model=m.RelationshipCreate,
        patch_model=m.RelationshipPatch,
        customer_column="from_customer_id",
        make=lambda b, c, p: {**b.model_dump(mode="json"), "from_customer_id": c, "updated_by": p.id},
        event=None,
        also_listed_by="to_customer_id",
    )

    # ---------------------------------------------------------------- webhooks
    wtag: list[str | Enum] = ["webhooks"]
    subs = st.subscriptions

    def _subscription(conn: Connection, subscription_id: str) -> dict[str, Any]:
        row = conn.execute(sa.select(subs).where(subs.c.subscription_id == subscription_id)).first()
        if row is None:
            raise HTTPException(404, f"no webhook subscription {subscription_id}")
        return _plain(row, ("secret", "after_seq", "enqueued_seq", "created_by"))

    @api.get(
        "/webhooks/subscriptions", tags=wtag, summary="List webhook subscriptions", response_model=list[m.Subscription]
    )
    def list_subscriptions(principal: Principal = Depends(writer)) -> list[dict[str, Any]]:
        with db.read() as conn:
            rows = conn.execute(sa.select(subs).order_by(subs.c.created_at))
            return [_plain(r, ("secret", "after_seq", "enqueued_seq", "created_by")) for r in rows]

    @api.post(
        "/webhooks/subscriptions",
        tags=wtag,
        status_code=201,
        response_model=m.Subscription,
        summary="Subscribe a URL to changes (the answer carries the signing secret, once)",
    )
    def create_subscription(
        body: m.SubscriptionCreate,
        request: Request,
        response: Response,
        principal: Principal = Depends(writer),
        idempotency_key: str | None = Header(None),
    ) -> Any:
        with db.write() as conn:
            idem = _Idempotency(conn, principal, idempotency_key, request, body)
            if (stored := idem.replay()) is not None:
                return stored
            last = conn.execute(sa.select(sa.func.coalesce(sa.func.max(st.events.c.seq), 0))).scalar_one()
            now = st.utcnow()
            subscription_id = st.new_id("sub")
            secret = "whsec_" + secrets.token_urlsafe(32)
            conn.execute(
                subs.insert().values(
                    subscription_id=subscription_id,
                    url=body.url,
                    events=list(body.events),
                    filters=body.filters,
                    secret=secret,
                    description=body.description,
                    active=True,
                    after_seq=last,
                    enqueued_seq=last,
                    created_by=principal.id,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            item = _subscription(conn, subscription_id)
            etag = cust.etag(item)
            answer = {**item, "secret": secret}
            idem.store(201, answer, etag)
        return _respond(response, answer, etag)

    @api.get(
        "/webhooks/subscriptions/{subscription_id}",
        tags=wtag,
        summary="Read a subscription",
        response_model=m.Subscription,
    )
    def read_subscription(
        subscription_id: str, response: Response, principal: Principal = Depends(writer)
    ) -> dict[str, Any]:
        with db.read() as conn:
            item = _subscription(conn, subscription_id)
        return _respond(response, item, cust.etag(item))

    @api.patch(
        "/webhooks/subscriptions/{subscription_id}",
        tags=wtag,
        summary="Edit or pause a subscription",
        response_model=m.Subscription,
    )
    def patch_subscription(
        subscription_id: str,
        body: m.SubscriptionPatch,
        response: Response,
        principal: Principal = Depends(writer),
        if_match: str | None = Header(None),
    ) -> dict[str, Any]:
        changes = _settable(subs, body.model_dump(mode="json", exclude_unset=True))
        with db.write() as conn:
            before = _subscription(conn, subscription_id)
            current = cust.etag(before)
            _check_if_match(if_match, current)
            if not _cas(conn, subs, "subscription_id", subscription_id, before["version"], changes):
                raise _lost_race(current)
            after = _subscription(conn, subscription_id)
        return _respond(response, after, cust.etag(after))

    @api.delete(
        "/webhooks/subscriptions/{subscription_id}",
        tags=wtag,
        status_code=204,
        summary="Delete a subscription (nothing more is sent to it)",
    )
    def delete_subscription(
        subscription_id: str, principal: Principal = Depends(writer), if_match: str | None = Header(None)
    ) -> Response:
        with db.write() as conn:
            before = _subscription(conn, subscription_id)
            _check_if_match(if_match, cust.etag(before))
            conn.execute(subs.delete().where(subs.c.subscription_id == subscription_id))
        return Response(status_code=204)

    @api.get(
        "/webhooks/subscriptions/{subscription_id}/deliveries",
        tags=wtag,
        response_model=list[m.Delivery],
        summary="Delivery state per event (as the last `mos crm deliver` left it); dead letters with status=",
    )
    def list_deliveries(
        subscription_id: str, status: str | None = None, principal: Principal = Depends(writer)
    ) -> list[dict[str, Any]]:
        d = st.deliveries
        with db.read() as conn:
            _subscription(conn, subscription_id)
            query = sa.select(d).where(d.c.subscription_id == subscription_id)
            if status:
                query = query.where(d.c.status == status)
            return [_plain(r) for r in conn.execute(query.order_by(d.c.updated_at, d.c.event_id))]

    @api.post(
        "/webhooks/subscriptions/{subscription_id}/replay",
        tags=wtag,
        status_code=202,
        response_model=m.Replay,
        summary="Send dead letters (or failed / unknown deliveries) again, at the next delivery run",
    )
    def replay(subscription_id: str, body: m.ReplayCreate, principal: Principal = Depends(writer)) -> dict[str, Any]:
        with db.write() as conn:
            _subscription(conn, subscription_id)
            replay_id = st.new_id("rpl")
            conn.execute(
                st.replays.insert().values(
                    replay_id=replay_id,
                    subscription_id=subscription_id,
                    statuses=sorted(set(body.statuses)),
                    requested_by=principal.id,
                    requested_at=st.utcnow(),
                )
            )
            return _plain(conn.execute(sa.select(st.replays).where(st.replays.c.replay_id == replay_id)).one())

    return api
