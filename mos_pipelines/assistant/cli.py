"""``mos ask`` and ``mos mcp`` (registered in mos_pipelines/cli.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _who(as_user: str | None):
    import os

    from mos_pipelines.access import AccessDenied, authenticate, principal

    try:
        if as_user:
            return principal(as_user)
        token = os.environ.get("MOS_TOKEN")
        if token:
            return authenticate(token)
        return principal("analyst")
    except AccessDenied as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(2) from None


def ask_command(
    question: Annotated[str, typer.Argument(help="A question about the metrics or customers, in plain words.")],
    thread: Annotated[
        str | None, typer.Option("--thread", help="Thread id: follow-ups start from its last answer.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON (for scripts).")] = False,
    as_user: Annotated[
        str | None, typer.Option("--as", help="User of config/access.yaml (default: $MOS_TOKEN's user, else analyst).")
    ] = None,
    llm: Annotated[bool, typer.Option("--llm", help="Let the model of config/llm.yaml write the spec.")] = False,
) -> None:
    """Answer a question from the semantic layer or the customer marts (read-only; logged in ops.assistant_log)."""
    from mos_pipelines.assistant import ask
    from mos_pipelines.settings import configure_environment

    settings = configure_environment()
    who = _who(as_user)
    answer = ask(question, principal=who, thread_id=thread, settings=settings, use_llm=llm, channel="cli")
    if as_json:
        print(json.dumps(answer.to_dict(), default=str, indent=2))
        return
    console.print(answer.text, soft_wrap=True)
    if answer.rows:
        table = Table(show_lines=False)
        for col in answer.columns:
            table.add_column(col)
        for row in answer.rows[:50]:
            table.add_row(*("" if v is None else f"{v:,.4g}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
    if answer.sql:
        console.print("[dim]SQL:[/]")
        console.print(answer.sql, soft_wrap=True, markup=False, highlight=False)
    if answer.mf_query:
        console.print(f"[dim]MetricFlow:[/] {answer.mf_query}", soft_wrap=True, highlight=False)
    console.print(f"[dim]thread {answer.thread_id} · {answer.latency_ms:.0f} ms · {answer.model}[/]")
    if answer.kind == "refusal":
        raise typer.Exit(1)


def mcp_command(
    as_user: Annotated[
        str | None, typer.Option("--as", help="User of config/access.yaml when MOS_MCP_TOKEN is not set.")
    ] = None,
) -> None:
    """Serve the assistant's read-only tools over MCP (stdio): metric query, customer look-up, insights, audiences,
    blueprint context. Acts as the user of $MOS_MCP_TOKEN, else --as."""
    from mos_pipelines.access import AccessDenied
    from mos_pipelines.assistant.mcp_server import resolve_principal, serve
    from mos_pipelines.settings import configure_environment

    settings = configure_environment()
    try:
        who = resolve_principal(as_user)
    except AccessDenied as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(2) from None
    serve(who, settings)
