"""One error for every configuration problem: the file, the key (a dotted path), what was expected, what was found.

``ConfigError`` reads like ``config/activation.yaml: destinations.email__nurture.channel (line 104): expected one
of email, webhook, google_customer_match, meta_custom_audience, slack; got 'carrier_pigeon'``. Validation reports
every problem of a file at once (``problems``); the message lists them one per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_pipelines.settings import PROJECT_ROOT

MISSING = object()  # ``got`` of a required key that is absent


def display_path(file: Path | str) -> str:
    """A path as a person reads it: relative to the repository when inside it, else as given."""
    path = Path(file)
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(file)


def describe(value: Any, limit: int = 80) -> str:
    """``got`` as text: a short ``repr`` of what the file holds (``nothing`` for a missing key)."""
    if value is MISSING:
        return "nothing (the key is missing)"
    if isinstance(value, str) and value.startswith("\0"):  # a pre-phrased description, e.g. an unknown key
        return value[1:]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ...>"


def phrased(text: str) -> str:
    """Mark ``text`` as an already phrased ``got`` (not a value to ``repr``)."""
    return "\0" + text


@dataclass(frozen=True)
class Problem:
    file: str
    key: str  # dotted path, e.g. destinations.email__nurture.channel or readers[0].id; "" = the whole file
    expected: str
    got: Any = MISSING
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{display_path(self.file)}: {self.key or '(top level)'}{where}: expected {self.expected}; got {describe(self.got)}"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid, or names something that does not exist.

    ``file``, ``key``, ``expected``, ``got`` and ``line`` describe the first problem; ``problems`` holds all of them.
    """

    def __init__(
        self,
        file: Path | str,
        key: str,
        expected: str,
        got: Any = MISSING,
        line: int | None = None,
        problems: tuple[Problem, ...] = (),
    ) -> None:
        first = Problem(str(file), key, expected, got, line)
        self.problems = problems or (first,)
        self.file, self.key, self.expected, self.got, self.line = (
            self.problems[0].file,
            self.problems[0].key,
            self.problems[0].expected,
            self.problems[0].got,
            self.problems[0].line,
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def of(cls, problems: list[Problem]) -> ConfigError:
        first = problems[0]
        return cls(first.file, first.key, first.expected, first.got, first.line, tuple(problems))
