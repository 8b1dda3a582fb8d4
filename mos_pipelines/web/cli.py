"""``mos serve``: the web app on 127.0.0.1 (registered in mos_pipelines/cli.py)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

import typer


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback unless --public).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
    public: Annotated[
        bool, typer.Option("--public", help="Allow a non-loopback --host (anyone who can reach it sees the sign-in).")
    ] = False,
    dagster_url: Annotated[
        str | None,
        typer.Option(help="The Dagster UI the pages link to (default $MOS_DAGSTER_URL or http://127.0.0.1:3000)."),
    ] = None,
) -> None:
    """The web app: Insights Hub, notifications with feedback, approvals, activation, blueprints, /ask, customers."""
    from rich.console import Console

    from mos_pipelines.settings import configure_environment

    console = Console()
    if not is_loopback(host) and not public:
        Console(stderr=True).print(
            f"[bold red]error:[/] --host {host} is not a loopback address: the app would be reachable from other "
            "machines. Pass --public as well if that is what you want (use TLS in front of it).",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    settings = configure_environment()
    import uvicorn

    from mos_pipelines.web.app import WebSettings, create_app

    web = WebSettings() if dagster_url is None else WebSettings(dagster_url=dagster_url)
    app = create_app(settings, web)
    console.print(f"MOS web app on http://{host}:{port} (warehouse {settings.warehouse_path}); sign in at /login")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
