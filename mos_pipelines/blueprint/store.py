"""Blueprint files: build one from an objective, write it where a person edits it (``$MOS_HOME/blueprints/<id>.yaml``),
read it back with line numbers, validate, diff two revisions, approve.

Every revision a person approves (and the generated one) is kept under ``blueprints/.revisions/<id>/r<n>.yaml`` so
``diff`` can compare the file with what was generated or last approved.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from mos_pipelines.blueprint.context import Context, Fact, as_of, gather, vocabulary
from mos_pipelines.blueprint.goal import Goal, Recomputed, compute_goal, recompute
from mos_pipelines.blueprint.llm_path import (
    intake_facts,
    intake_parser,
    plan_parser,
    planning_facts,
)
from mos_pipelines.blueprint.objective import Objective, ObjectiveError, parse_objective
from mos_pipelines.blueprint.plan import (
    Blueprint,
    Planner,
    PlanProblem,
    check,
    rule_based_plan,
)
from mos_pipelines.configuration.blueprint import BlueprintSettings
from mos_pipelines.configuration.errors import ConfigError
from mos_pipelines.configuration.loader import load_documents, read_document
from mos_pipelines.llm.client import LLM

HEADER = """\
# A blueprint: the objective as read, the goal with its arithmetic, and the plan (a DAG of steps).
# Edit the steps (parameters, budgets, dependencies), then `mos blueprint validate {id}` and
# `mos blueprint approve {id}`. Every step's budget_usd must add up to budget_usd; depends_on names step ids.
# The facts behind it, with their SQL: {context}
"""


class BlueprintInvalid(ValueError):
    """A blueprint file that fails validation: every problem, each with its key and line."""

    def __init__(self, path: Path, problems: list[PlanProblem]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(f"  {path.name}: {p}" for p in problems))


def blueprint_id(objective: Objective, day: datetime.date | None) -> str:
    """Same normalised objective and same data day -> same id."""
    key = json.dumps({"objective": objective.normalised(), "as_of": day.isoformat() if day else None}, sort_keys=True)
    return "bp_" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class Draft:
    blueprint: Blueprint
    goal: Goal
    facts: dict[str, Fact] = field(default_factory=dict)


def read_objective_file(path: Path) -> dict[str, Any]:
    """An objective as YAML: ``objective`` (the words), optional ``budget_usd`` and ``horizon_months``."""
    doc = read_document(path)
    allowed = {"objective", "budget_usd", "horizon_months"}
    for key in doc.data:
        if key not in allowed:
            raise ConfigError(
                path,
                str(key),
                f"one of {', '.join(sorted(allowed))}",
                f"the unknown key {key!r}",
                line=doc.lines.get((key,)),
            )
    if not isinstance(doc.data.get("objective"), str):
        raise ConfigError(
            path,
            "objective",
            'the objective in words, e.g. "Expand paying customers in the EU"',
            doc.data.get("objective"),
            line=doc.lines.get(("objective",)),
        )
    for key in ("budget_usd", "horizon_months"):
        value = doc.data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(path, key, "a positive number", value, line=doc.lines.get((key,)))
    return {
        "text": doc.data["objective"],
        "budget_usd": doc.data.get("budget_usd"),
        "months": doc.data.get("horizon_months"),
    }


def draft(
    con: duckdb.DuckDBPyConnection,
    settings: BlueprintSettings,
    text: str,
    budget_usd: float | None = None,
    months: float | None = None,
    llm: LLM | None = None,
) -> Draft:
    """Objective -> context -> goal -> plan, all from the warehouse behind ``con`` (read only). With ``llm``, the
    tasks ``blueprint_intake`` / ``blueprint_planning`` are asked first when their model is not the offline one."""
    vocab = vocabulary(con, settings)
    llm_notes: list[str] = []
    objective = None
    planner_kind = "rule_based"
    if llm is not None:
        try:
            example = parse_objective(text, settings, vocab, budget_usd, months)
        except ObjectiveError:
            example = None
        asked = llm.structured(
            "blueprint_intake",
            "blueprint.objective",
            intake_facts(text, settings, vocab, example),
            intake_parser(text, settings, vocab, budget_usd, months),
            context="blueprint",
        )
        objective = asked.value
        if objective is not None:
            llm_notes.append(f"objective read by {asked.model}")
        elif asked.model != "offline":
            llm_notes.append(f"LLM intake not used ({asked.reason}): the offline parser read the objective")
    if objective is None:
        objective = parse_objective(text, settings, vocab, budget_usd, months)
    day = as_of(con, settings)
    ctx = Context(con, settings, day)
    facts = gather(ctx, objective.metric, objective.segment)
    goal = compute_goal(objective, facts, settings)
    steps, notes = rule_based_plan(objective, goal, facts, settings)
    unavailable = [f"{name}: not available: {f.reason}" for name, f in facts.items() if not f.available]
    bid = blueprint_id(objective, day)
    bp = Blueprint(
        blueprint_id=bid,
        revision=1,
        objective=objective,
        as_of=day.isoformat() if day else None,
        budget_usd=objective.budget_usd,
        goal=goal.as_dict(),
        context_file=f"{bid}.context.json",
        planner=Planner(kind="rule_based", notes=tuple(notes + unavailable)),
        steps=tuple(steps),
    )
    if llm is not None:
        asked = llm.structured(
            "blueprint_planning", "blueprint.plan", planning_facts(bp, facts), plan_parser(bp), context=bid
        )
        if asked.value is not None:
            planner_kind, steps = "llm", list(asked.value)
            llm_notes.append(f"plan written by {asked.model}, checked like `mos blueprint validate`")
        elif asked.model != "offline":
            llm_notes.append(f"LLM plan not used ({asked.reason}): the rule-based plan is used")
    if llm_notes or planner_kind != "rule_based":
        bp = bp.model_copy(
            update={
                "steps": tuple(steps),
                "planner": Planner(
                    kind=planner_kind,
                    notes=tuple(llm_notes + (notes if planner_kind == "rule_based" else []) + unavailable),
                ),
            }
        )
    return Draft(bp, goal, facts)


def dump(bp: Blueprint) -> str:
    data = bp.model_dump(mode="json", exclude_none=False)
    for step in data["steps"]:
        if step.get("expected") is not None:
            step["expected"] = {k: v for k, v in step["expected"].items() if v is not None}
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    return HEADER.format(id=bp.blueprint_id, context=bp.context_file or "(none)") + body


def write(directory: Path, d: Draft, force: bool = False) -> tuple[Path, bool]:
    """Write the draft as ``<id>.yaml`` (and its facts as ``<id>.context.json``); (path, written). An existing file
    is kept unless ``force``: it may hold a person's edits."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{d.blueprint.blueprint_id}.yaml"
    facts = {name: f.as_dict() for name, f in d.facts.items()}
    (directory / f"{d.blueprint.blueprint_id}.context.json").write_text(
        json.dumps(facts, indent=2, sort_keys=True) + "\n"
    )
    if path.exists() and not force:
        return path, False
    text = dump(d.blueprint)
    path.write_text(text)
    _keep_revision(directory, d.blueprint.blueprint_id, text, 1)
    return path, True


def _revisions_dir(directory: Path, bid: str) -> Path:
    return directory / ".revisions" / bid


def _keep_revision(directory: Path, bid: str, text: str, number: int) -> Path:
    target = _revisions_dir(directory, bid)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"r{number}.yaml"
    path.write_text(text)
    return path


def revisions(directory: Path, bid: str) -> list[Path]:
    found = list(_revisions_dir(directory, bid).glob("r*.yaml"))
    return sorted(found, key=lambda p: int(p.stem[1:]))


def resolve(directory: Path, ref: str) -> Path:
    """A blueprint by id (in ``directory``) or by path."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = directory / f"{ref}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in directory.glob("bp_*.yaml")) if directory.exists() else []
    raise FileNotFoundError(
        f"no blueprint {ref!r} in {directory} (known: {', '.join(known) or 'none'}); "
        "give an id or a path to a .yaml file"
    )


def load(path: Path) -> tuple[Blueprint, dict]:
    """A blueprint file validated against the schema (``ConfigError`` with key and line otherwise), and the line of
    every key."""
    doc = read_document(path)
    return load_documents(Blueprint, [doc]), doc.lines


def validate(path: Path) -> Blueprint:
    """Schema, references, acyclic dependencies, budgets that add up; ``BlueprintInvalid`` lists every problem."""
    bp, lines = load(path)
    problems = check(bp, lines)
    if problems:
        raise BlueprintInvalid(path, problems)
    return bp


def approve(path: Path, by: str, at: datetime.datetime | None = None) -> Blueprint:
    """Validate, then record who approved and the hash of what they approved; keep the approved revision."""
    bp = validate(path)
    if not by.strip():
        raise ValueError("approve needs the approver's name (--by)")
    directory = path.parent
    kept = revisions(directory, bp.blueprint_id)
    number = bp.revision
    if kept:
        last, _ = load(kept[-1])
        if last.content_hash() != bp.content_hash():
            number = max(int(p.stem[1:]) for p in kept) + 1
    stamp = (at or datetime.datetime.now(datetime.UTC)).replace(microsecond=0).isoformat()
    data = bp.model_dump(mode="json")
    data["revision"] = number
    data["approval"] = {"by": by.strip(), "at": stamp, "content_hash": bp.content_hash()}
    approved = Blueprint.model_validate(data)
    text = dump(approved)
    path.write_text(text)
    _keep_revision(directory, bp.blueprint_id, text, number)
    return approved


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff(old: Blueprint, new: Blueprint) -> list[str]:
    """What changed from ``old`` to ``new``: steps added, removed and changed (by id), budgets, the objective and
    the goal; one line per change."""
    lines: list[str] = []
    a, b = old.content(), new.content()
    old_steps = {s["id"]: s for s in a.pop("steps")}
    new_steps = {s["id"]: s for s in b.pop("steps")}
    for key in sorted(set(_flatten(a)) | set(_flatten(b))):
        va, vb = _flatten(a).get(key, "(absent)"), _flatten(b).get(key, "(absent)")
        if va != vb:
            lines.append(f"~ {key}: {va!r} -> {vb!r}")
    for sid in old_steps.keys() - new_steps.keys():
        lines.append(f"- step {sid} ({old_steps[sid]['type']}, ${old_steps[sid]['budget_usd']:,.2f})")
    for sid in new_steps.keys() - old_steps.keys():
        lines.append(f"+ step {sid} ({new_steps[sid]['type']}, ${new_steps[sid]['budget_usd']:,.2f})")
    for sid in [s for s in new_steps if s in old_steps]:
        fa, fb = _flatten(old_steps[sid]), _flatten(new_steps[sid])
        for key in sorted(set(fa) | set(fb)):
            va, vb = fa.get(key, "(absent)"), fb.get(key, "(absent)")
            if va != vb:
                lines.append(f"~ step {sid}.{key}: {va!r} -> {vb!r}")
    order = {"~": 0, "-": 1, "+": 2}
    return sorted(lines, key=lambda line: (order[line[0]], line))


def recompute_goal(path: Path, bp: Blueprint, settings: BlueprintSettings) -> Recomputed | None:
    """What the file's spending steps buy as they stand, at the rates of the context the goal was computed from
    (``<id>.context.json`` beside the file); None without that file."""
    if not bp.context_file:
        return None
    context = path.parent / bp.context_file
    if not context.is_file():
        return None
    facts = {name: Fact.from_dict(data) for name, data in json.loads(context.read_text()).items()}
    return recompute(bp.objective, bp.steps, facts, settings, bp.goal)
