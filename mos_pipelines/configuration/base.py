"""The base of every settings model: pydantic, unknown keys forbidden, values as typed as the YAML that holds them.

Numbers, whole numbers, booleans and text are strict (``"5%"`` is not a number, ``true`` is not 1); lists from
YAML become tuples. A collection whose entries a person names (destinations, audiences, copy templates) is marked
``replace``: an override file that sets it replaces it whole instead of merging into the bundled one.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

Number = StrictFloat
Whole = StrictInt
Flag = StrictBool
Share = Annotated[StrictFloat, Field(ge=0, le=1)]
Positive = Annotated[StrictFloat, Field(gt=0)]
NonNegative = Annotated[StrictFloat, Field(ge=0)]
Count = Annotated[StrictInt, Field(ge=1)]
Day = Annotated[datetime.date, Field(strict=False)]  # YAML gives a date, a quoted one is text: both are read


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("non-empty text")
    return value


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError("a name of letters, digits and _ (not starting with a digit)")
    return value


def _relation(value: str) -> str:
    if not RELATION.match(value):
        raise ValueError("schema.table")
    return value


def _snake(value: str) -> str:
    if not SNAKE.match(value):
        raise ValueError("a lower_snake_case name (lower-case letters, digits and _)")
    return value


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

Text = Annotated[StrictStr, AfterValidator(_non_empty)]
Identifier = Annotated[StrictStr, AfterValidator(_identifier)]
Relation = Annotated[StrictStr, AfterValidator(_relation)]
SnakeName = Annotated[StrictStr, AfterValidator(_snake)]


def replace(**kwargs: Any) -> Any:
    """A field an override file replaces whole (a collection of named entries), with ``Field`` arguments."""
    return Field(json_schema_extra={"merge": "replace"}, **kwargs)


def merged(**kwargs: Any) -> Any:
    """A mapping of plain values an override file merges into key by key (e.g. goals by objective)."""
    return Field(json_schema_extra={"merge": "merge"}, **kwargs)


class Section(BaseModel):
    """A mapping of a config file: its keys are exactly the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DomainSettings(Section):
    """The settings of one file of ``config/``; the loader records which file(s) they were read from."""

    _files: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def source(self) -> Path | None:
        """The file a person edits: the override file when one was given, else the bundled file."""
        return self._files[-1] if self._files else None

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file merged into these settings, bundled first."""
        return self._files

    def loaded(self) -> None:
        """Called by the loader once the files are recorded (e.g. to tell nested sections their file)."""


def unique(items: tuple[Any, ...], field: str, what: str) -> tuple[Any, ...]:
    """``items`` when no two share ``field``; else ``Invalid`` at the second one (``what``: e.g. "a reader id")."""
    seen: set[Any] = set()
    for index, item in enumerate(items):
        value = getattr(item, field)
        if value in seen:
            raise Invalid(f"{what} used once ({value!r} is listed twice)", (index, field))
        seen.add(value)
    return items


class Invalid(ValueError):
    """A validator's finding about a key below the one it validates: ``at`` is the rest of the dotted path,
    ``expected`` what would be valid, ``got`` what is there (default: the value at that key)."""

    def __init__(self, expected: str, at: tuple[str | int, ...] = (), got: Any = None, has_got: bool = False) -> None:
        super().__init__(expected)
        self.expected, self.at, self.got, self.has_got = expected, at, got, has_got
