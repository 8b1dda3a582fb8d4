"""Reading a YAML config file and validating its values, with errors that name the file and the key.

Each config module keeps its own error class (a ``ValueError``) and its own schema; this module only
holds what they all did alike: reading the file into a top-level mapping, pointing at a key
(``At``: ``budget.max_share`` or ``experiments[0]``), and the scalar checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml


def read_mapping(file: Path | str, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The top-level mapping of the YAML file (``{}`` when empty); errors read ``<what> <file>: <problem>``."""
    file = Path(file)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise error(f"{what} {file}: cannot read the file ({exc.strerror or exc})") from exc
    return parse_mapping(file, content, what, error)


def parse_mapping(file: Path, content: bytes, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The top-level mapping of YAML ``content`` read from ``file`` (``{}`` when empty)."""
    try:
        data = yaml.safe_load(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{what} {file}: not UTF-8 text ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{what} {file}: invalid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{what} {file}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class At:
    """A key in a config file, for errors: ``[<what> ]<file>: key '<key>': <problem>``."""

    file: str | Path
    key: str
    error: type[ValueError]
    what: str = ""

    def __truediv__(self, name: str | int) -> At:
        if isinstance(name, int):
            key = f"{self.key}[{name}]"
        else:
            key = f"{self.key}.{name}" if self.key else name
        return At(self.file, key, self.error, self.what)

    def fail(self, problem: str) -> NoReturn:
        prefix = f"{self.what} " if self.what else ""
        raise self.error(f"{prefix}{self.file}: key '{self.key or '<top level>'}': {problem}")


def number(at: At, value: Any, low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    """A number (not a bool), optionally within ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.fail(f"expected a number, got {value!r}")
    result = float(value)
    if low is not None and (result < low or (low_open and result == low)):
        at.fail(f"must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and result > high:
        at.fail(f"must be <= {high:g}, got {value!r}")
    return result


def integer(at: At, value: Any, low: int) -> int:
    """A whole number (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        at.fail(f"expected a whole number, got {value!r}")
    if value < low:
        at.fail(f"must be >= {low}, got {value!r}")
    return value


def text(at: At, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        at.fail(f"expected a non-empty string, got {value!r}")
    return value


def choice(at: At, value: Any, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if value not in options:
        at.fail(f"expected one of {', '.join(options)}, got {value!r}")
    return value
