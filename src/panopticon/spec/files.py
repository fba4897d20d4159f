"""Reading specification files: YAML with positions, validated by pydantic, errors with file:line:col.

The YAML loader is PyYAML's SafeLoader with two refusals: aliases (a few hundred bytes of nested
aliases expand to gigabytes) and duplicate keys (PyYAML would silently keep the last one). While
building plain Python data it records where every key path sits in the file, so each validation
error can point at the line and column the user must edit.

Files are read with one bounded read of at most :data:`MAX_FILE_BYTES` (+1, to tell that a file
is too long), and only regular files: a device such as ``/dev/zero`` would never end and a FIFO
would block until someone writes to it. Every step is at most linear in the size of the file, so
a large file of nonsense is refused in seconds.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import stat
import types
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag, ValidationError

from panopticon.errors import Problem, UserError

KeyPath = tuple[str | int, ...]
Positions = dict[KeyPath, tuple[int, int]]
M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_PROBLEMS = 100
"""Most problems listed in one error; the rest are counted (a file of 20,000 typos needs the
first few fixed, not 20,000 lines of output)."""
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
            key = _scalar(key_node, path, file, problems)
            if key is _BAD:
                continue
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
    value = _scalar(node, path, file, problems)
    return None if value is _BAD else value


_BAD = object()
"""What :func:`_scalar` returns for a value it could not read (a problem is recorded)."""


def _scalar(node: yaml.Node, path: KeyPath, file: str, problems: list[Problem]) -> Any:
    """A scalar's Python value, or :data:`_BAD` with a problem at its position when PyYAML
    cannot build it: an integer longer than Python converts (4,300 digits), an impossible date,
    bad base64. These raise plain ValueErrors, which would otherwise be tracebacks."""
    try:
        return _Loader.construct_object(_LOADER_STUB, node, deep=True)
    except (ValueError, OverflowError) as exc:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if node.tag == "tag:yaml.org,2002:int":
            what = ("a whole number with more digits than can be read (at most 4300); no "
                    "number in a panopticon file needs more than a few")
        else:
            what = f"cannot read this value as {node.tag.rsplit(':', 1)[-1]} ({exc})"
        problems.append(Problem(file, line, col, dotted(path), what))
        return _BAD


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
    return parse_yaml(read_text(path), file)


def read_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """A regular file's text, read with one bounded read of at most ``limit`` bytes.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a
    FIFO without a writer is refused instead of hanging, a device (``/dev/zero``) instead of
    read without end, and a file swapped for one of those after a check cannot slip through.
    Line ends are normalised as :meth:`Path.read_text` does.

    Raises:
        UserError: missing, a folder, not a regular file, unreadable, too large, not UTF-8.
    """
    file = str(path)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{file}: no such file")
    if p.is_dir():
        raise UserError(f"{file}: is a folder; expected a YAML file")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UserError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                    "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                    "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise UserError(f"{file}: is {kind}; expected a YAML file")
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UserError(f"{file}: larger than {limit} bytes; a scenario is a short file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # the codec's message quotes bytes of the file: say what was expected instead
        raise UserError(f"{file}: not UTF-8 text (a binary file?); expected a YAML scenario "
                        "or policy file") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
        raise UserError("invalid YAML", capped(problems))
    return data, positions


def capped(problems: list[Problem]) -> list[Problem]:
    """At most :data:`MAX_PROBLEMS` problems, the last one counting those left out."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - (MAX_PROBLEMS - 1)
    last = problems[MAX_PROBLEMS - 1]
    return [*problems[:MAX_PROBLEMS - 1],
            Problem(last.file, 0, 0, "", f"... and {rest:,} more problems (fix these first)")]


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


def did_you_mean(word: str, options, n: int = 3) -> str:
    """`` (did you mean 'x'?)`` (or ``'x' or 'y'``) for the options closest to ``word``;
    ``""`` when none is close."""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=n, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


_EXPONENT = re.compile(r"[-+]?\d+[eE][-+]?\d+")
"""A number in exponent form without a dot: YAML 1.1 (PyYAML) reads ``1e-2`` as text."""
_NUMBER_ERRORS = {"float_type", "float_parsing", "int_type", "int_parsing"}


def closest(name: str, known) -> list[str]:
    """The known names closest to ``name`` (at most 3): close spellings, else names that share
    its first word (``red_lite`` -> ``red_light``); none when nothing is close."""
    known = [str(k) for k in known]
    return difflib.get_close_matches(name, known, 3) or [
        k for k in known if k.split("_")[0] == name.split("_")[0]][:3]


def shown(value: Any) -> str:
    """A found value as a message shows it: text quoted, a fraction to 10 significant digits,
    ``nothing`` for a value not given; cut at 60 characters (a long list or expression)."""
    if value is None:
        return "nothing"
    text = f"{value:.10g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_LISTED = 12
"""Known names a rule lists (``one of: ...``); beyond that it relies on "did you mean"."""


def one_of(what: str, names) -> str:
    """The rule for a name from a known set: ``a tier of the policy, one of: A, B, C``; a long
    set is not listed (the closest names come as "did you mean")."""
    names = [str(n) for n in names]
    if not names:
        return f"{what} (there are none)"
    return f"{what}, one of: {', '.join(names)}" if len(names) <= _LISTED else what


def render(rule: str, value: Any, known=()) -> str:
    """A problem in the one style every check and the schema use: ``got VALUE; expected
    RULE``, then ``; did you mean 'NAME'?`` when a name in ``known`` is close to ``value``."""
    close = closest(value, known) if isinstance(value, str) and known else []
    hint = "; did you mean " + " or ".join(map(repr, close)) + "?" if close else ""
    return f"got {shown(value)}; expected {rule}{hint}"


def exponent_hint(text: str, whole: bool = False) -> str:
    """What to write instead of ``text`` (``1e-2``), which YAML 1.1 reads as text, where a
    number (``whole``: a whole number) is expected; matches docs/scenarios.md, File rules."""
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        value = None
    plain = format(value, "f") if value is not None else ""
    plain = plain if plain and len(plain) <= 16 else ""
    with_dot = re.sub(r"^([-+]?\d+)", r"\1.0", text)
    head = f"YAML 1.1 reads {text} (no dot) as text"
    if whole:
        is_whole = value is not None and value == value.to_integral_value()
        return (f"expected a whole number; {head}: write {plain}" if is_whole and plain
                else f"expected a whole number; {head}")
    return f"expected a number; {head}: write {with_dot}" + (f" or {plain}" if plain else "")


def _exponent_text(err: dict) -> str | None:
    """The input of a number error when it is a number YAML 1.1 read as text (``1e-2``)."""
    shown = err.get("input")
    if err["type"] in _NUMBER_ERRORS and isinstance(shown, str) and _EXPONENT.fullmatch(shown):
        return shown
    return None


# ---------------------------------------------------------------- the keys a location takes
def _alternatives(tp: Any) -> list[tuple[Any, frozenset[str]]]:
    """The types a value of annotation ``tp`` may take, each with the tags that name it in
    pydantic's error locations (its class name, its ``Tag`` in a discriminated union)."""
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *meta = get_args(tp)
        tags = frozenset(m.tag for m in meta if isinstance(m, Tag))
        return [(t, g | tags) for t, g in _alternatives(inner)]
    if origin is Union or origin is types.UnionType:
        return [alt for arg in get_args(tp) for alt in _alternatives(arg)]
    if tp is type(None):
        return []
    return [(tp, frozenset({tp.__name__}) if _is_model(tp) else frozenset())]


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _inside(tp: Any, part: str | int) -> list[tuple[Any, frozenset[str]]]:
    """The alternatives of the value at key or index ``part`` of a value of type ``tp``."""
    if _is_model(tp):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return _alternatives(field.annotation)
        return []
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is dict and len(args) == 2:
        return _alternatives(args[1])
    if origin in (list, set, frozenset) and args and isinstance(part, int):
        return _alternatives(args[0])
    if origin is tuple and args and isinstance(part, int):
        return _alternatives(args[0] if args[-1] is Ellipsis or part >= len(args) else args[part])
    return []


def known_keys(model: Any, loc: tuple[Any, ...], data: Any) -> list[str]:
    """The keys the mapping at pydantic location ``loc`` (of ``data`` validated as ``model``)
    takes: the fields of the model (or models, where a value may take several forms) found
    there by following the location through the type annotations. Parts of ``loc`` that are
    not in ``data`` are pydantic's union and validator tags: they pick the form, not a key."""
    found = _alternatives(model)
    node = data
    for part in loc:
        if not found:
            return []
        in_data = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if in_data:
            node = node[part]
            found = [alt for tp, _ in found for alt in _inside(tp, part)]
            continue
        if not isinstance(part, str):
            return []
        match = re.fullmatch(r"function-\w+\[.*, (\w+)\]", part)
        tag = match.group(1) if match else part
        tagged = [(tp, tags) for tp, tags in found if tag in tags]
        found = tagged or found  # a tag of another kind (``tagged-union[...]``) picks nothing
    keys: list[str] = []
    for tp, _ in found:
        if _is_model(tp):
            keys += [f.alias or name for name, f in tp.model_fields.items()]
    return list(dict.fromkeys(keys))


def _unknown_key(err: dict, model: Any, data: Any) -> str:
    """The message for an unknown key: the closest known keys there, else the known keys."""
    loc = tuple(err["loc"])
    key = str(loc[-1]) if loc else ""
    keys = known_keys(model, loc[:-1], data) if model is not None else []
    if not keys:
        return render("a known key here (check the spelling; see the documented keys)", key)
    if closest(key, keys):
        return render("a known key here", key, keys)
    listed = ", ".join(keys) if len(keys) <= 20 else ", ".join(keys[:20]) + ", ..."
    return render(f"a known key here, one of: {listed}", key)


def _names_in(text: str) -> list[str]:
    """``'a', 'b' or 'c'`` as ``['a', 'b', 'c']`` (pydantic's list of expected values)."""
    return re.findall(r"'((?:[^'\\]|\\.)*)'", text)


def _schema_message(err: dict) -> str:
    """A schema error (anything but an unknown or missing key) in the one style: the value
    found, pydantic's "Input should be ..." as the rule, and a "did you mean" for a mistyped
    choice (a literal value or key such as ``regoin``, a union tag, a distribution kind).
    A validator's own message is already a rule; it follows the value as it is."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    msg = err["msg"].removeprefix("Value error, ")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**60:
        value = f"a number of {len(str(abs(value)))} digits"
    known: list[str] = []
    if kind == "literal_error":
        known = _names_in(str(ctx.get("expected", "")))
    elif kind == "union_tag_invalid" and isinstance(ctx.get("tag"), str):
        value, known = ctx["tag"], _names_in(str(ctx.get("expected_tags", "")))
    elif kind == "distribution_kind" and isinstance(value, dict) and isinstance(
            value.get("kind"), str) and "kind:" in msg:
        options = [w for w in re.findall(r"\w+", msg.split("kind:", 1)[1]) if w != "or"]
        if value["kind"] not in options:
            value, known = value["kind"], options
    if msg.startswith("Input should be "):
        return render(msg.removeprefix("Input should be "), value, known)
    hint = render("", value, known).partition("; expected ")[2]  # "; did you mean ...?" or ""
    return f"got {shown(value)}; {msg}{hint}"


def problems_from(exc: ValidationError, data: Any, positions: Positions, file: str,
                  prefix: KeyPath = (), model: Any = None) -> list[Problem]:
    """Turn pydantic errors into :class:`Problem`s with file positions and plain messages.

    A value that may take several forms (a number or a distribution) fails once per form;
    only the most specific failure is kept: one per key path, and none at a path when a
    deeper path below it explains the problem. ``model`` is what ``data`` was validated as:
    given, an unknown key at any depth comes with the closest known keys there ("did you
    mean"). Where a number is expected and the value is text such as ``1e-2`` (YAML 1.1 reads
    exponents without a dot as text), the message says so and what to write.
    """
    found: dict[KeyPath, dict] = {}
    exponents: dict[KeyPath, tuple[str, bool]] = {}
    for err in exc.errors(include_url=False):
        path = (*prefix, *_clean_loc(tuple(err["loc"]), data))
        if path not in found or _rank(err) < _rank(found[path]):
            found[path] = err
        text = _exponent_text(err)
        if text is not None:  # a float anywhere among the forms: the hint is for a float
            whole = err["type"].startswith("int") and exponents.get(path, (text, True))[1]
            exponents[path] = (text, whole)
    # every path with a problem below it, built once: linear in the number of problems
    # (comparing each path with every other took minutes for a file of 20,000 unknown keys)
    above = {path[:k] for path in found for k in range(len(path))}
    problems = []
    for path, err in found.items():
        kind = err["type"]
        if path in above and kind in _TYPE_ERRORS:
            continue
        line, col = locate(positions, path)
        if kind == "extra_forbidden":
            # hints for the first problems only: a file of 20,000 typos lists MAX_PROBLEMS
            msg = (_unknown_key(err, model, data) if len(problems) < MAX_PROBLEMS
                   else render("a known key here (check the spelling; see the documented "
                               "keys)", str(path[-1]) if path else ""))
        elif kind == "missing":
            msg = render("this required key", None)
        elif path in exponents and kind in _TYPE_ERRORS:
            msg = f"got {shown(exponents[path][0])}; " + exponent_hint(*exponents[path])
        else:
            msg = _schema_message(err)
        problems.append(Problem(file, line, col, dotted(path), msg))
    return problems


EXPECTED = ("a mapping of keys to values: schema_version, name, society, behaviour, sensors, "
            "policy, ... for a panopticon scenario; name, rules, tiers, ... for a policy")
"""What a file given to panopticon should be, for files that are something else."""


def check_kind(model: type[BaseModel], data: Any, positions: Positions, file: str,
               what: str = "scenario") -> None:
    """Refuse data that cannot be a ``model`` file at all: not a mapping, or a mapping with
    none of the model's keys (``/etc/passwd``, a README). The message says what was expected
    and quotes nothing of the file: listing its "unknown keys" would echo its lines.

    Raises:
        UserError: naming the file and what kind of file was expected.
    """
    line, col = positions.get((), (1, 1))
    if not isinstance(data, dict):
        kind = type(data).__name__
        found = {"str": "text (str)", "list": "a list", "int": "a number (int)",
                 "float": "a number (float)", "bool": "a true/false value (bool)"}.get(kind, kind)
        raise UserError(f"invalid {what}", [Problem(
            file, line, col, "", f"expected {EXPECTED}; the file holds {found}")])
    if data and not set(map(str, data)) & set(model.model_fields):
        raise UserError(f"invalid {what}", [Problem(
            file, line, col, "", f"not a panopticon {what}: none of the file's {len(data)} "
                                 f"top-level keys is a {what} key; expected {EXPECTED}")])


def validate(model: type[M], data: Any, positions: Positions, file: str,
             what: str = "scenario") -> M:
    """Validate plain data into a frozen pydantic model, or raise one UserError with every problem."""
    check_kind(model, data, positions, file, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid {what}",
                        capped(problems_from(exc, data, positions, file, model=model))) from None
