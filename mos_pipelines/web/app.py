"""The marketers' web app (``mos serve``): the Insights Hub, notifications with feedback, approvals, activation
status, blueprints' progress, /ask and a customer's relationship graph (/customers/{id}), server-rendered (Jinja
templates, a stylesheet served by the app, charts and the graph as inline SVG; no script from elsewhere and no
front-end build).

Who is asking is ``mos_pipelines.access``: a Bearer token on each request, or a session cookie set once at /login.
No or a bad credential is a 401, a role without the permission a 403 (an HTML page, or JSON when the client asks
for JSON or sent a Bearer token). Forms carry the session's CSRF token. Reads and writes of the warehouse go through
``mos_pipelines.web.data`` (short connections; "busy" while a run holds the file, never a 500).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from mos_pipelines.access import AccessDenied, Principal, authenticate, bearer
from mos_pipelines.configuration import load_access
from mos_pipelines.settings import Settings, get_settings
from mos_pipelines.web import auth, charts, data, graph

HERE = Path(__file__).parent
FLASH = "mos_flash"
VERDICTS = {"useful": "Useful", "not_useful": "Not useful", "mark_as_completed": "Done"}


@dataclass
class WebSettings:
    """How the app links and waits: the Dagster UI's address, the session secret, how long a write waits for a
    run's lock, how long a session lasts."""

    dagster_url: str = field(default_factory=lambda: os.environ.get("MOS_DAGSTER_URL", "http://127.0.0.1:3000"))
    secret: bytes = field(
        default_factory=lambda: (
            os.environ["MOS_WEB_SECRET"].encode() if os.environ.get("MOS_WEB_SECRET") else auth.new_secret()
        )
    )
    wait_seconds: float = 2.0
    session_seconds: int = 12 * 3600


class Invalid(ValueError):
    """A request the user can correct (unknown notification, decided approval, empty question): a 400 page."""


class NotFound(LookupError):
    """A page of something the warehouse does not hold (an unknown customer id): a 404 page."""


def _wants_json(request: Request) -> bool:
    """A script rather than a browser: an /api/ path, a Bearer token, or JSON asked for."""
    accept = request.headers.get("accept", "")
    return (
        request.url.path.startswith("/api/")
        or bearer(request.headers.get("authorization")) is not None
        or ("application/json" in accept and "text/html" not in accept)
    )


def create_app(settings: Settings | None = None, web: WebSettings | None = None) -> FastAPI:
    """The web app over ``settings.mos_home``'s warehouse (default: $MOS_HOME)."""
    settings = settings or get_settings()
    web = web or WebSettings()
    access = load_access()
    sessions = auth.Sessions(web.secret, access, web.session_seconds)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["asset_url"] = lambda key: (
        f"{web.dagster_url.rstrip('/')}/assets/" + "/".join(quote(part) for part in key)
    )
    templates.env.globals["svg"] = lambda text: Markup(text) if text else ""
    templates.env.filters["num"] = _num
    path = settings.warehouse_path

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the hub's charts (matplotlib: seconds cold) are drawn in the background as the app starts
        threading.Thread(target=_warm_charts, args=(path,), daemon=True, name="mos-web-charts").start()
        yield

    app = FastAPI(title="MOS Pipelines", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings, app.state.web, app.state.sessions = settings, web, sessions
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def who(request: Request) -> Principal:
        token = bearer(request.headers.get("authorization"))
        if token is not None:
            return authenticate(token, access)
        return sessions.verify(request.cookies.get(auth.COOKIE))

    def page(request: Request, name: str, principal: Principal | None, http_status: int = 200, **context: Any):
        cookie = request.cookies.get(auth.COOKIE)
        context.update(
            request=request,
            me=principal,
            csrf=sessions.csrf(cookie) if cookie else "",
            msg=unquote(request.cookies.get(FLASH, "")) or None,
            dagster_url=web.dagster_url,
        )
        response = templates.TemplateResponse(request, name, context, status_code=http_status)
        if FLASH in request.cookies:  # shown once
            response.delete_cookie(FLASH)
        return response

    def check_form(request: Request, csrf: str | None) -> None:
        """Forms of a cookie session must carry its CSRF token (a Bearer client is not a browser session)."""
        if bearer(request.headers.get("authorization")) is None and not sessions.check_csrf(
            request.cookies.get(auth.COOKIE), csrf
        ):
            raise AccessDenied(403, "The form's CSRF token is missing or stale: reload the page and try again.")

    def back(url: str, msg: str) -> RedirectResponse:
        """Post/redirect/get; the outcome rides in a one-view cookie (not the URL: no page shows a crafted text)."""
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(FLASH, quote(msg), max_age=60, httponly=True, samesite="strict")
        return response

    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": exc.message, "status": exc.status}, status_code=exc.status)
        if exc.status == 401:  # the sign-in form, coming back here afterwards
            nxt = request.url.path if request.method == "GET" else "/"
            return page(request, "login.html", None, 401, next=_safe_next(nxt), error=exc.message)
        try:  # signed in but not allowed: keep the navigation
            me: Principal | None = who(request)
        except AccessDenied:
            me = None
        return page(request, "error.html", me, exc.status, title="Not allowed", message=exc.message)

    @app.exception_handler(data.Busy)
    async def busy(request: Request, exc: data.Busy) -> Response:
        message = "The warehouse is busy with a run; try again in a minute."
        if _wants_json(request):
            return JSONResponse({"error": message, "status": 503}, status_code=503, headers={"Retry-After": "60"})
        return page(request, "error.html", None, 503, title="Busy", message=message, detail=str(exc))

    @app.exception_handler(data.NoWarehouse)
    async def missing(request: Request, exc: data.NoWarehouse) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": str(exc), "status": 503}, status_code=503)
        return page(request, "error.html", None, 503, title="No warehouse yet", message=str(exc))

    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": str(exc), "status": 400}, status_code=400)
        return page(request, "error.html", None, 400, title="Cannot do that", message=str(exc))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": str(exc), "status": 404}, status_code=404)
        return page(request, "error.html", None, 404, title="Not found", message=str(exc))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # -- signing in ------------------------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/"):
        return page(request, "login.html", None, next=_safe_next(next))

    @app.post("/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/")):
        try:
            principal = authenticate(token.strip(), access)
        except AccessDenied as exc:
            return page(request, "login.html", None, 401, next=_safe_next(next), error=exc.message)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            auth.COOKIE,
            sessions.issue(principal, token.strip()),
            max_age=web.session_seconds,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        check_form(request, csrf)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    # -- Insights Hub ------------------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def hub(request: Request, limit: int = 20):
        principal = who(request)
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            frame = data.latest_insights(con)
        items = [data.Insight(i, row) for i, (_, row) in enumerate(frame.head(limit).iterrows(), start=1)]
        for item in items:
            item.svg = charts.insight_svg(item.row)
        return page(request, "hub.html", principal, insights=items, total=len(frame))

    @app.get("/insights/{insight_id}", response_class=HTMLResponse)
    def insight_page(request: Request, insight_id: str):
        principal = who(request)
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            found = data.insight(con, insight_id)
        if found is None:
            raise Invalid(f"No insight {insight_id!r} in insights.insights (the hub lists the latest run's).")
        evidence = found.evidence
        return page(
            request,
            "insight.html",
            principal,
            ins=found,
            chart=charts.insight_svg(found.row),
            summary=data.mask_rows(evidence.get("summary") or [], principal),
            rows=data.mask_rows(evidence.get("rows") or [], principal),
        )

    # -- notifications and feedback ---------------------------------------------------------------------------------

    def reader_for(principal: Principal, reader: str | None) -> str:
        reader = reader or principal.id
        if not principal.may_give_feedback_for(reader):
            raise AccessDenied(
                403, f"{principal.id} ({principal.role}) may not see or answer {reader}'s notifications."
            )
        return reader

    @app.get("/notifications", response_class=HTMLResponse)
    def notifications_page(request: Request, reader: str | None = None):
        principal = who(request)
        reader = reader_for(principal, reader)
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            rows = data.notifications(con, reader)
            ranking = data.next_ranking(con, reader)
        others = data.readers() if principal.can("feedback_for_others") else []
        return page(
            request,
            "notifications.html",
            principal,
            reader=reader,
            notifications=rows,
            ranking=ranking,
            readers=others,
            verdicts=VERDICTS,
        )

    @app.post("/notifications/{notification_id}/feedback")
    def feedback(
        request: Request,
        notification_id: str,
        verdict: str = Form(...),
        reader: str = Form(""),
        note: str = Form(""),
        csrf: str = Form(""),
    ):
        principal = who(request)
        check_form(request, csrf)
        reader = reader_for(principal, reader or None)
        from mos_pipelines.insights.insight_tables import FeedbackError

        if note and reader != principal.id:
            note = f"{note} (given by {principal.id})"
        elif reader != principal.id:
            note = f"given by {principal.id}"
        try:
            data.record_feedback(path, web.wait_seconds, notification_id, reader, verdict, note or None)
        except FeedbackError as exc:
            raise Invalid(str(exc)) from exc
        if _wants_json(request):
            return JSONResponse({"recorded": verdict, "notification_id": notification_id, "reader": reader})
        target = "/notifications" + (f"?reader={quote(reader)}" if reader != principal.id else "")
        return back(target, f"Recorded “{VERDICTS.get(verdict, verdict)}”. The ranking below now counts it.")

    # -- approvals ------------------------------------------------------------------------------------------------

    @app.get("/approvals", response_class=HTMLResponse)
    def approvals_page(request: Request, status: str = "pending"):
        principal = who(request)
        if status not in ("pending", "approved", "rejected", "all"):
            raise Invalid(f"status {status!r}: expected pending, approved, rejected or all")
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            rows = data.approvals(con, None if status == "all" else status)
        return page(request, "approvals.html", principal, approvals=rows, status=status)

    @app.post("/approvals/{approval_id}")
    def decide(
        request: Request,
        approval_id: str,
        decision: str = Form(...),
        note: str = Form(""),
        csrf: str = Form(""),
    ):
        principal = who(request)
        check_form(request, csrf)
        principal.require("approve_copy", "approve or reject copy")
        from mos_pipelines.activation.content import ApprovalError

        if decision == "rejected" and not note.strip():
            raise Invalid("Say why the copy is rejected (the note is kept with the decision).")
        try:
            data.decide(path, web.wait_seconds, approval_id, decision, principal.id, note.strip() or None)
        except ApprovalError as exc:
            raise Invalid(str(exc)) from exc
        if _wants_json(request):
            return JSONResponse({"approval_id": approval_id, "status": decision, "by": principal.id})
        return back(
            "/approvals",
            f"Approval {approval_id} {decision}. The next delivery "
            f"{'sends' if decision == 'approved' else 'never sends'} this copy.",
        )

    # -- activation and blueprints ----------------------------------------------------------------------------------

    @app.get("/activation", response_class=HTMLResponse)
    def activation_page(request: Request):
        principal = who(request)
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            status = data.activation_status(con)
        return page(request, "activation.html", principal, **status)

    @app.get("/blueprints", response_class=HTMLResponse)
    def blueprints_page(request: Request):
        principal = who(request)
        directory = settings.mos_home / "blueprints"
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            found = data.blueprints(con, directory)
        return page(request, "blueprints.html", principal, blueprints=found)

    # -- a customer and its relationship graph -------------------------------------------------------------------

    @app.get("/customers/{customer_id}", response_class=HTMLResponse)
    def customer_page(request: Request, customer_id: str, limit: int = 12):
        principal = who(request)
        limit = min(max(limit, 1), 50)
        with data.connection(path, wait_seconds=web.wait_seconds) as con:
            found = data.customer(con, customer_id)
            if found is None:
                raise NotFound(f"No customer {customer_id!r} in marts.dim_customers (merged away or erased?).")
            edges = data.customer_edges(con, customer_id)
            others = sorted(
                {str(e["target_id"] if e["source_id"] == customer_id else e["source_id"]) for e in edges or []}
            )
            names = data.customer_names(con, [customer_id, *others])
        see_pii = principal.can("see_pii")
        hood = graph.masked(graph.neighbourhood(customer_id, edges or [], names, limit=limit), see_pii)
        if _wants_json(request):
            return JSONResponse(
                {
                    "customer_id": customer_id,
                    "name": hood.centre_label,
                    "graph_built": edges is not None,
                    "neighbours": [
                        {
                            "id": n.id,
                            "kind": n.kind,
                            "name": n.label,
                            "strength": n.strength,
                            "ties": [dataclasses.asdict(t) for t in n.ties],
                        }
                        for n in hood.shown
                    ],
                    "more": hood.more,
                }
            )
        return page(
            request,
            "customer.html",
            principal,
            customer=found,
            display_name=hood.centre_label,
            hood=hood,
            graph_built=edges is not None,
            chart=graph.svg(hood) if hood.shown else None,
            company=found.get("company"),
        )

    # -- the assistant --------------------------------------------------------------------------------------------------

    @app.get("/ask", response_class=HTMLResponse)
    def ask_page(request: Request):
        principal = who(request)
        return page(request, "ask.html", principal, installed=_assistant() is not None, answer=None, thread=[])

    @app.post("/ask", response_class=HTMLResponse)
    def ask(
        request: Request,
        question: str = Form(""),
        thread_id: str = Form(""),
        previous: Annotated[list[str] | None, Form()] = None,
        csrf: str = Form(""),
    ):
        principal = who(request)
        check_form(request, csrf)
        assistant = _assistant()
        if assistant is None:
            return page(request, "ask.html", principal, 501, installed=False, answer=None, thread=[])
        if not question.strip():
            raise Invalid("Type a question (e.g. “signups by channel last week”).")
        with data.exclusive():
            answer = assistant(
                question.strip(), principal=principal, thread_id=thread_id or None, settings=settings, use_llm=False
            )
        rows = data.mask_table(list(answer.columns), [list(r) for r in answer.rows], principal)
        result = answer.to_dict() | {"rows": rows}
        if _wants_json(request):
            return JSONResponse(result)
        return page(
            request,
            "ask.html",
            principal,
            installed=True,
            answer=result,
            chart=charts.series_svg(answer.chart, list(answer.columns), rows),
            asset_keys=data.asset_keys_in_sql(answer.sql),
            thread=[*(previous or [])[-9:], question.strip()],
        )

    crm = _optional("mos_pipelines.crm.api")  # the CRM API (issue #19) when it is installed
    if crm is not None:
        app.include_router(crm.router(settings), prefix="/api/v1")
    return app


def _warm_charts(path: Path, limit: int = 20) -> None:
    """Draw the latest run's charts into the cache; a busy or missing warehouse is left to the first page view."""
    try:
        with data.connection(path, wait_seconds=0.0) as con:
            frame = data.latest_insights(con)
        for _, row in frame.head(limit).iterrows():
            charts.insight_svg(row)
    except Exception:  # noqa: BLE001 (a warm-up: the page itself reports any problem)
        return


def _optional(module: str) -> Any:
    """A part of the project built separately (the assistant, the CRM API), or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):  # the module itself is missing, not one it imports
            return None
        raise


def _assistant() -> Any:
    """``mos_pipelines.assistant.ask`` when the assistant is installed, else None (the page says so)."""
    assistant = _optional("mos_pipelines.assistant")
    return None if assistant is None else assistant.ask


def _safe_next(target: str) -> str:
    """Only a path of this app (no scheme, no host, no //) is followed after signing in."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
