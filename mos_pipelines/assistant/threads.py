"""Conversation threads: each thread's turns (question, spec) in ``$MOS_HOME/assistant/threads/<id>.json``, so a
follow-up ("and in the EU?") starts from the last answered spec, across processes (CLI, web app, MCP)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from mos_pipelines.settings import Settings

THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ThreadError(ValueError):
    pass


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _file(settings: Settings, thread_id: str) -> Path:
    if not THREAD_ID.match(thread_id):
        raise ThreadError("a thread id is 1-64 letters, digits, '-' or '_'")
    return settings.mos_home / "assistant" / "threads" / f"{thread_id}.json"


def turns(settings: Settings, thread_id: str) -> list[dict[str, Any]]:
    file = _file(settings, thread_id)
    if not file.exists():
        return []
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return data if isinstance(data, list) else []


def last_spec(settings: Settings, thread_id: str) -> dict[str, Any] | None:
    for turn in reversed(turns(settings, thread_id)):
        if turn.get("spec"):
            return turn
    return None


def append(settings: Settings, thread_id: str, turn: dict[str, Any], keep: int) -> None:
    file = _file(settings, thread_id)
    file.parent.mkdir(parents=True, exist_ok=True)
    kept = [*turns(settings, thread_id), turn][-keep:]
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept, default=str), encoding="utf-8")
    tmp.replace(file)
