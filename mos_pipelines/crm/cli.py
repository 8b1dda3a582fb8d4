"""`mos crm …`: deliver the CRM's webhooks and look at their state (registered in mos_pipelines/cli.py)."""

from __future__ import annotations

import datetime
import json
import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

crm_app = typer.Typer(help="The CRM API's webhooks and erasure requests.", no_args_is_help=True)
console = Console()


def run_id() -> str:
    return f"crm-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@crm_app.command("deliver")
def deliver_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Send the CRM's changes to their webhook subscribers (signed; retries; each change once per subscriber)."""
    from mos_pipelines.cli import fail, open_warehouse
    from mos_pipelines.configuration import load_activation
    from mos_pipelines.crm import store, webhooks
    from mos_pipelines.settings import configure_environment

    settings = configure_environment()
    db = store.Store.open(settings)
    with open_warehouse(settings.warehouse_path) as con:
        try:
            report = webhooks.deliver(con, db, load_activation().retry, run_id(), log=lambda m: None)
        except Exception as exc:  # a broken subscription or store: say which, exit non-zero
            fail(f"CRM webhook delivery failed: {type(exc).__name__}: {exc}")
    db.dispose()
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    table = Table(title=f"CRM webhooks ({report.run_id})")
    for col in ("subscription", "new", "acked", "failed", "dead", "attempts", "resent after crash", "requeued"):
        table.add_column(col, justify="left" if col == "subscription" else "right")
    for s in report.subscriptions:
        table.add_row(
            s.subscription_id,
            *(
                str(v)
                for v in (
                    s.enqueued,
                    s.acknowledged,
                    s.failed,
                    s.dead_letter,
                    s.attempts,
                    s.resent_after_crash,
                    s.requeued,
                )
            ),
        )
    console.print(table)
    console.print(f"{report.build_events} golden-record change(s) of builds became events")
    if any(s.failed or s.dead_letter for s in report.subscriptions):
        console.print("failed: retried by the next run; dead: `POST /api/v1/webhooks/subscriptions/<id>/replay`")


@crm_app.command("publish")
def publish_command() -> None:
    """Publish marts.dim_customers as the CRM API's serving copy (the build does it after every run)."""
    from mos_pipelines.cli import open_warehouse
    from mos_pipelines.crm import customers
    from mos_pipelines.settings import configure_environment

    settings = configure_environment()
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        rows = customers.publish(con, settings.mos_home)
    console.print(
        "marts.dim_customers does not exist: run `mos run` first" if rows is None else f"{rows} customers published"
    )
