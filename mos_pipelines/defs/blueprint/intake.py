"""Objective intake from the Dagster launchpad: the job ``blueprint_intake`` takes the objective, budget and horizon
as run config and writes the draft blueprint as `mos blueprint new` does (logic in ``mos_pipelines.blueprint.store``).

    ops:
      draft_blueprint:
        config: {objective: "Expand paying customers in the EU", budget_usd: 100000, horizon_months: 3}

The run's metadata holds the goal statement, the arithmetic, the steps and the file to review; an ambiguous or
unsupported objective fails the run with the parser's message (what it could mean, what is supported).
"""

import dagster as dg
from pydantic import Field

from mos_pipelines.defs.resources import MosHome
from mos_pipelines.settings import WAREHOUSE_POOL

JOB = "blueprint_intake"


class Intake(dg.Config):
    objective: str = Field(description='The objective in words, e.g. "Expand paying customers in the EU".')
    budget_usd: float | None = Field(default=None, gt=0, description="Budget in USD (or say it in the objective).")
    horizon_months: float | None = Field(default=None, gt=0, description="Horizon in months (or in the objective).")
    force: bool = Field(default=False, description="Overwrite an existing file of the same id (it may hold edits).")


@dg.op(pool=WAREHOUSE_POOL, tags={"mos/blueprint": "intake"})
def draft_blueprint(context: dg.OpExecutionContext, config: Intake, mos: MosHome) -> str:
    """Objective → context → goal → plan, written to ``$MOS_HOME/blueprints/<id>.yaml`` for review."""
    from mos_pipelines.blueprint import store
    from mos_pipelines.blueprint.goal import GoalError
    from mos_pipelines.blueprint.objective import ObjectiveError
    from mos_pipelines.blueprint.report import summary_lines
    from mos_pipelines.configuration import load_blueprint

    if not mos.paths.warehouse_path.exists():
        raise dg.Failure(f"No warehouse at {mos.paths.warehouse_path}: materialize the assets first (`mos run`).")
    try:
        with mos.connect() as con:
            d = store.draft(con, load_blueprint(), config.objective, config.budget_usd, config.horizon_months)
    except (ObjectiveError, GoalError) as exc:
        raise dg.Failure(str(exc)) from exc
    path, written = store.write(mos.paths.mos_home / "blueprints", d, force=config.force)
    bp = d.blueprint
    context.add_output_metadata(
        {
            "blueprint_id": bp.blueprint_id,
            "file": dg.MetadataValue.path(str(path)),
            "written": written,
            "goal": bp.goal.get("statement", ""),
            "summary": dg.MetadataValue.md("```\n" + "\n".join(summary_lines(bp)) + "\n```"),
            "next": f"edit the file if you wish, then `mos blueprint approve {bp.blueprint_id} --by <you>`",
        }
    )
    if not written:
        context.log.warning(f"{path} exists (same objective, same data): kept; set force to overwrite it")
    return bp.blueprint_id


@dg.job(
    name=JOB,
    description="Objective intake: the objective, budget and horizon as run config → a draft blueprint to review "
    "($MOS_HOME/blueprints/<id>.yaml), as `mos blueprint new` writes it.",
    tags={"mos/blueprint": "intake"},
)
def blueprint_intake() -> None:
    draft_blueprint()
