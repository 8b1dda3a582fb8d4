"""The one loader: YAML files in, validated settings out, or one ``ConfigError`` listing every problem.

A domain's settings are read from its bundled file (``config/<domain>.yaml``, the one place its values are
declared) and, when an override file is given (its environment variable or an explicit path), that file merged
over it: mappings merge key by key, lists and values replace, and a collection marked ``replace`` (destinations,
audiences, ...) is replaced whole. Every key of the result knows where it came from (``provenance``).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mos_pipelines.configuration.base import DomainSettings, Invalid, Section
from mos_pipelines.configuration.errors import MISSING, ConfigError, Problem, display_path, phrased

Key = tuple[str | int, ...]
S = TypeVar("S", bound=DomainSettings)


@dataclass(frozen=True)
class Document:
    """One YAML file: its top-level mapping and the line of every key in it."""

    file: Path
    data: dict[str, Any]
    lines: dict[Key, int] = field(default_factory=dict, repr=False)
    label: str = ""  # how ``provenance`` names the file, e.g. "$MOS_ACTIVATION_CONFIG (/tmp/a.yaml)"

    def name(self) -> str:
        return self.label or display_path(self.file)


def read_document(file: Path | str, label: str = "") -> Document:
    """Read one YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    file = Path(file)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise ConfigError(file, "", "a readable YAML file", phrased(exc.strerror or str(exc))) from exc
    return parse_document(file, content, label)


def parse_document(file: Path, content: bytes, label: str = "") -> Document:
    """Parse YAML ``content`` read from ``file``."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", "UTF-8 text", phrased(f"undecodable bytes at offset {exc.start}")) from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file, "", "valid YAML", phrased(f"{problem}{where}"), line=line) from exc
    finally:
        loader.dispose()
    if data is None:
        return Document(file, {}, {}, label)
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            "",
            "a mapping of keys at the top level",
            phrased(f"a {type(data).__name__}"),
            line=node.start_mark.line + 1,
        )
    lines: dict[Key, int] = {}
    _record_lines(file, node, (), lines)
    return Document(file, data, lines, label)


def _record_lines(file: Path, node: yaml.Node, path: Key, lines: dict[Key, int]) -> None:
    """The line of every key; a key set twice in one mapping is an error (YAML would keep the last silently)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = path + (key_node.value,)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise ConfigError(
                    file,
                    format_key(key),
                    "each key once in its mapping",
                    phrased(f"it again at line {line}"),
                    line=lines[key],
                )
            lines[key] = line
            _record_lines(file, value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = path + (index,)
            lines[key] = item.start_mark.line + 1
            _record_lines(file, item, key, lines)


# -- merging ---------------------------------------------------------------------------------------------------

Spec = Any  # a Section subclass, ("entries", Spec) for a mapping of named entries, or None


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _spec_of(annotation: Any) -> Spec:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    if typing.get_origin(annotation) is dict:
        return ("entries", _spec_of(typing.get_args(annotation)[1]))
    return None


def _child(spec: Spec, key: Any) -> tuple[str, Spec]:
    """How an override merges at ``key`` under ``spec``: ("merge" | "replace", the spec below it)."""
    if isinstance(spec, tuple):  # an entry of a mapping of named entries
        inner = spec[1]
        return ("merge" if inner is not None else "replace"), inner
    if isinstance(spec, type) and issubclass(spec, Section):
        info = spec.model_fields.get(key)
        if info is None or getattr(spec, "replace_values", False):
            return "replace", None
        marker = (info.json_schema_extra or {}).get("merge") if isinstance(info.json_schema_extra, dict) else None
        child = _spec_of(info.annotation)
        if marker:
            return str(marker), child
        return ("merge" if child is not None else "replace"), child
    return "replace", None


def merge(base: Any, override: Any, spec: Spec = None) -> Any:
    """``override`` over ``base`` (see the module docstring for the rules)."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        how, child = _child(spec, key)
        if how == "merge" and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = merge(merged[key], value, child)
        else:
            merged[key] = value
    return merged


# -- validation ------------------------------------------------------------------------------------------------


def load_documents(model: type[S], documents: list[Document]) -> S:
    """Merge ``documents`` (bundled first) and validate them as ``model``; every problem in one ``ConfigError``."""
    data: dict[str, Any] = {}
    for document in documents:
        data = merge(data, document.data, model)
    try:
        settings = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.of(problems(exc, model, data, documents)) from None
    settings._files = tuple(d.file for d in documents)
    settings.loaded()
    return settings


def problems(
    exc: ValidationError, model: type[BaseModel], data: dict[str, Any], documents: list[Document]
) -> list[Problem]:
    """pydantic's errors as problems: the file that holds the key, its dotted path and line, expected, got."""
    found: dict[Key, Problem] = {}
    for error in exc.errors():
        path = _data_path(error["loc"], data)
        kind = error["type"]
        got: Any = error.get("input", MISSING)
        if kind == "missing":
            got = MISSING
        elif kind == "extra_forbidden":
            got = phrased(f"the unknown key {path[-1]!r}")
        expected = _expected(error, model, path)
        if kind in ("union_tag_invalid", "union_tag_not_found"):  # the `type` of a tagged entry
            ctx = error.get("ctx") or {}
            path = path + (str(ctx.get("discriminator", "type")).strip("'"),)
            got = ctx["tag"] if kind == "union_tag_invalid" else MISSING
        finding = (error.get("ctx") or {}).get("error")
        if isinstance(finding, Invalid):
            path = path + tuple(finding.at)
            got = finding.got if finding.has_got else _lookup(data, path)
            expected = finding.expected
        document, line = _locate(path, data, documents)
        problem = Problem(str(document.file), format_key(path), expected, got, line)
        if path in found:  # several branches of one union: say what any of them would take
            previous = found[path]
            if expected not in previous.expected:
                found[path] = Problem(
                    previous.file, previous.key, f"{previous.expected} or {expected}", previous.got, previous.line
                )
            continue
        found[path] = problem
    return list(found.values())


def _data_path(loc: tuple[Any, ...], data: Any) -> Key:
    """``loc`` without pydantic's union and validator tags: only keys and indexes that exist in ``data``, plus
    the last element (the missing or unknown key)."""
    path: list[Any] = []
    current = data
    for position, element in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict) and element in current:
            current = current[element]
            path.append(element)
        elif isinstance(current, (list, tuple)) and isinstance(element, int) and element < len(current):
            current = current[element]
            path.append(element)
        elif (
            last and isinstance(current, dict) and not (isinstance(element, str) and ("[" in element or "-" in element))
        ):
            path.append(element)
    return tuple(path)


def format_key(path: Key) -> str:
    """``("readers", 0, "id")`` -> ``readers[0].id``."""
    text = ""
    for element in path:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text


def _locate(path: Key, data: dict[str, Any], documents: list[Document]) -> tuple[Document, int | None]:
    """The document whose value is in effect at ``path`` (or at the deepest enclosing key that has a value), and
    the line of the deepest part of ``path`` that document holds."""
    owner = None
    for end in range(len(path), 0, -1):
        merged = _lookup(data, path[:end])
        if merged is MISSING:
            continue
        owner = next((d for d in reversed(documents) if _lookup(d.data, path[:end]) == merged), None)
        if owner is not None:
            break
    if owner is None:  # a key of a mapping several files set: the last file that holds any of the path
        owner = next(
            (d for end in range(len(path), 0, -1) for d in reversed(documents) if path[:end] in d.lines), documents[-1]
        )
    line = next((owner.lines[path[:end]] for end in range(len(path), 0, -1) if path[:end] in owner.lines), None)
    return owner, line


def _model_at(model: Any, path: Key) -> Any:
    """The Section model that holds the keys at ``path`` (None when it is not a Section)."""
    spec: Spec = model
    for element in path:
        if isinstance(element, int):
            continue
        if isinstance(spec, tuple):
            spec = spec[1]
            continue
        if isinstance(spec, type) and issubclass(spec, Section):
            info = spec.model_fields.get(element)
            if info is None:
                return None
            annotation = _unwrap(info.annotation)
            if typing.get_origin(annotation) in (list, tuple):
                annotation = _unwrap(typing.get_args(annotation)[0])
            spec = _spec_of(annotation)
        else:
            return None
    return spec if isinstance(spec, type) and issubclass(spec, Section) else None


EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "dict_type": "a mapping of keys",
    "list_type": "a list",
    "tuple_type": "a list",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "a date (YYYY-MM-DD)",
    "missing": "a value (the key is required)",
    "none_required": "nothing (null)",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}


def _expected(error: dict[str, Any], model: type[BaseModel], path: Key) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        holder = _model_at(model, path[:-1])
        if holder is not None:
            return "one of the keys " + ", ".join(holder.model_fields)
        return "a known key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "one of " + str(ctx.get("expected_tags", "")).replace("'", "")
    if kind == "literal_error":
        options = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"one of {options}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        return f"a number {sign} {bound:g}" if isinstance(bound, (int, float)) else f"a value {sign} {bound}"
    if kind in ("too_short", "too_long"):
        size = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"{'at least' if kind == 'too_short' else 'at most'} {size} item(s)"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", error["msg"]))
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in EXPECTED:
        return EXPECTED[kind]
    return error["msg"].removeprefix("Input should be ").removeprefix("Value error, ")


# -- provenance ------------------------------------------------------------------------------------------------


def leaves(value: Any, path: Key = ()) -> list[tuple[Key, Any]]:
    """The values of a settings dump, one per key; lists of plain values count as one value."""
    if isinstance(value, dict):
        if not value:
            return [(path, value)]
        out: list[tuple[Key, Any]] = []
        for key, item in value.items():
            out += leaves(item, path + (key,))
        return out
    if isinstance(value, (list, tuple)) and any(isinstance(item, (dict, list, tuple)) for item in value):
        out = []
        for index, item in enumerate(value):
            out += leaves(item, path + (index,))
        return out
    return [(path, value)]


def source_of(path: Key, value: Any, documents: list[Document]) -> str:
    """Where the value at ``path`` came from: the last document that holds that value there (with its line),
    else the model's default."""
    for document in reversed(documents):
        held = _lookup(document.data, path)
        if held is not MISSING and _same(held, value):
            line = document.lines.get(path)
            return f"{document.name()}{f':{line}' if line else ''} {format_key(path)}"
    return "default"


def _lookup(data: Any, path: Key) -> Any:
    for element in path:
        try:
            data = data[element]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return data


def _same(held: Any, value: Any) -> bool:
    """YAML's value and the settings' JSON dump of it are the same (dates as text, tuples as lists)."""
    return json.loads(json.dumps(held, default=str)) == value
