"""Reading specification files: YAML with positions, validated by pydantic, errors with file:line:col.

The YAML loader is PyYAML's SafeLoader with two refusals: aliases (a few hundred bytes of nested
aliases expand to gigabytes) and duplicate keys (PyYAML would silently keep the last one). While
building plain Python data it records where every key path sits in the file, so each validation
error can point at the line and column the user must edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from panopticon.errors import Problem, UserError

KeyPath = tuple[str | int, ...]
Positions = dict[KeyPath, tuple[int, int]]
M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 64
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases."""

    def compose_node(self, parent, index):  # noqa: D102
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                "while reading the file", None,
                "YAML aliases (*name) are not allowed in panopticon files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _to_data(node: yaml.Node, path: KeyPath, positions: Positions, file: str,
             problems: list[Problem]) -> Any:
    if len(path) > MAX_DEPTH:
        raise yaml.MarkedYAMLError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                   node.start_mark)
    positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise yaml.MarkedYAMLError(None, None, "could not determine a constructor", node.start_mark)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _Loader.construct_object(_LOADER_STUB, key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1, dotted(path),
                                        "keys must be plain words"))
                continue
            key = str(key) if not isinstance(key, str) else key
            child = (*path, key)
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1,
                                        key_node.start_mark.column + 1, dotted(child),
                                        "duplicate key; each key may appear once"))
                continue
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _to_data(value_node, child, positions, file, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(v, (*path, i), positions, file, problems)
                for i, v in enumerate(node.value)]
    return _Loader.construct_object(_LOADER_STUB, node, deep=True)


class _Stub(_Loader):
    def __init__(self):  # a constructor without a stream, for scalar construction only
        yaml.constructor.SafeConstructor.__init__(self)


_LOADER_STUB = _Stub()


def read_yaml(path: str | Path) -> tuple[Any, Positions]:
    """Parse a YAML file into plain data and the (line, column) of every key path.

    Raises:
        UserError: missing or unreadable file, empty file, invalid YAML, aliases, duplicate keys.
    """
    file = str(path)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{file}: no such file")
    if p.is_dir():
        raise UserError(f"{file}: is a folder; expected a YAML file")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"{file}: larger than {MAX_FILE_BYTES} bytes; a scenario is a short file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot be read as UTF-8 text ({exc})") from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Like :func:`read_yaml` for text already in memory; ``file`` names it in messages."""
    positions: Positions = {}
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            raise UserError(f"{file}: the file is empty; expected a mapping of keys to values")
        data = _to_data(node, (), positions, file, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or exc.context or "invalid YAML"
        if "could not determine a constructor" in what:
            what = "YAML tags (!name) are not allowed in panopticon files; write plain values"
        raise UserError("invalid YAML", [Problem(file, line, col, "", what)]) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{file}: invalid YAML ({exc})") from None
    except RecursionError:
        raise UserError(f"{file}: invalid YAML (nested too deeply)") from None
    if problems:
        raise UserError("invalid YAML", problems)
    return data, positions


def dotted(path: KeyPath) -> str:
    """``("policy", "tiers", 2, "min")`` as ``policy.tiers[2].min``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(positions: Positions, path: KeyPath) -> tuple[int, int]:
    """The position of ``path`` or of its nearest ancestor that is in the file."""
    for n in range(len(path), -1, -1):
        if path[:n] in positions:
            return positions[path[:n]]
    return (0, 0)


def _clean_loc(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Drop pydantic's union and discriminator tags from an error location."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part, node):
            out.append(part)  # a missing key or an unknown one: still part of the path
            node = None
    return tuple(out)


def _is_tag(part: str, node: dict) -> bool:
    """Whether a location part names a union member rather than a key of ``node``."""
    return ("[" in part or "-" in part or part[:1].isupper()
            or part in {"str", "int", "float", "bool", "list", "dict", "table"}
            or part == node.get("kind"))


_TYPE_ERRORS = {"dict_type", "model_type", "model_attributes_type", "float_type", "float_parsing",
                "int_type", "int_parsing", "string_type", "list_type", "union_tag_invalid",
                "union_tag_not_found", "literal_error", "bool_type", "bool_parsing",
                "distribution_kind"}


def _rank(err: dict) -> int:
    """Which of several failures at one path to show: a value's own problem first, then a
    wrong distribution kind, then a plain type mismatch against another accepted form."""
    if err["type"] not in _TYPE_ERRORS:
        return 0
    return 1 if err["type"].startswith(("union_tag", "distribution_kind")) else 2


def problems_from(exc: ValidationError, data: Any, positions: Positions, file: str,
                  prefix: KeyPath = ()) -> list[Problem]:
    """Turn pydantic errors into :class:`Problem`s with file positions and plain messages.

    A value that may take several forms (a number or a distribution) fails once per form;
    only the most specific failure is kept: one per key path, and none at a path when a
    deeper path below it explains the problem.
    """
    found: dict[KeyPath, dict] = {}
    for err in exc.errors(include_url=False):
        path = (*prefix, *_clean_loc(tuple(err["loc"]), data))
        if path not in found or _rank(err) < _rank(found[path]):
            found[path] = err
    problems = []
    for path, err in found.items():
        kind = err["type"]
        deeper = any(len(p) > len(path) and p[:len(path)] == path for p in found)
        if deeper and kind in _TYPE_ERRORS:
            continue
        line, col = locate(positions, path)
        if kind == "extra_forbidden":
            msg = "unknown key (check the spelling; see the documented keys)"
        elif kind == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            if isinstance(shown, str | int | float | bool) and kind not in {"union_tag_not_found"}:
                text = repr(shown)
                msg += f"; got {text if len(text) < 60 else text[:57] + '...'}"
        problems.append(Problem(file, line, col, dotted(path), msg))
    return problems


def validate(model: type[M], data: Any, positions: Positions, file: str,
             what: str = "scenario") -> M:
    """Validate plain data into a frozen pydantic model, or raise one UserError with every problem."""
    if not isinstance(data, dict):
        line, col = positions.get((), (1, 1))
        raise UserError(f"invalid {what}", [Problem(
            file, line, col, "", f"expected a mapping of keys to values; got {type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid {what}", problems_from(exc, data, positions, file)) from None
