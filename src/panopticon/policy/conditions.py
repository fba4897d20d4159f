"""Policy conditions: a small, safe expression language compiled to NumPy array operations.

A condition such as ``score < 600 and (days_since("drunk_driving") < 365 or listed("court_defaulter"))``
is parsed with :func:`ast.parse` (``mode="eval"``) and compiled, through an allow-list of node types,
into a closure over whole arrays, one element per citizen. Nothing is ever ``eval``'d or ``exec``'d,
no attribute is looked up, and only declared columns and functions can be named.

The language::

    form                 example                                            types
    -------------------  -------------------------------------------------  ------------------------
    literal              600, -0.35, True, false                            number, bool
    column               score, region                                      number or category
    arithmetic           a + b, a - b, a * b, a / b, -a, +a                 numbers -> number
    comparison (chains)  a < b, 0 < a <= 5, a == b, a != b                  numbers -> bool
    category test        region == "urban", job in ("a", "b")               category, labels -> bool
    logic (elementwise)  p and q, p or q, not p                             bools -> bool
    choice               a if p else b                                      p bool; a, b alike
    declared function    listed("court_defaulter"), count("x", 30)          literals -> as declared
    built-in function    min(a, b, ...), max(...), abs(a), clip(a, lo, hi)  numbers -> number

Semantics: numbers are float64; ``a / 0`` is 0 (an empty denominator counts as nothing), never inf,
nan or a warning; ``and``/``or`` evaluate both sides; ``==``/``!=`` also compare two bools or two
category columns with the same labels; ``clip(a, lo, hi)`` is ``min(max(a, lo), hi)``; an inf coming
from a column propagates without warnings. Arithmetic that can overflow (a result beyond the largest float,
about 1.8e308) is refused when it compiles: with literals alone (``1e308 * 10``) it always would, and with
columns of known range (:attr:`Column.span`) it can for some citizen. Every number expression's result has a
range, :attr:`Condition.span`, computed from the literals' values and the columns' spans (unknown, hence
infinite, past a division by something that can be near 0, a declared function, or a column without a
span). Strings appear only as function arguments (checked against
``names``) and as labels of a category column. Everything else (attributes, subscripts, ``**``, ``//``,
``%``, bit operators, ``is``, lambdas, comprehensions, f-strings, ``:=``, keyword arguments, dict/set
literals, ...) is refused with a :class:`ConditionError` naming the column, as are expressions longer
than :data:`MAX_CHARS` characters, with more than :data:`MAX_NODES` nodes, or nested (operators and
calls, not parentheses) more than :data:`MAX_DEPTH` deep.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import reduce
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

MAX_CHARS = 500
"""Longest accepted expression, in characters."""
MAX_NODES = 200
"""Most expression nodes (names, literals, operators, calls) in one expression."""
MAX_DEPTH = 30
"""Deepest accepted nesting of operators and calls (a lone literal has depth 0)."""

Kind = Literal["number", "bool"]
ArgKind = Literal["event", "list", "tier", "layer", "number"]
Span = tuple[float, float]
"""The least and greatest value a number expression can take (either may be infinite)."""
ANY: Span = (-math.inf, math.inf)


@dataclass(frozen=True)
class Column:
    """A citizen column an expression may name: numbers, or categories stored as integer codes
    (code ``k`` means ``labels[k]``). ``span``: the range of a number column's values, when
    known; it lets compilation refuse arithmetic that can overflow and bound the result."""

    kind: Literal["number", "category"]
    labels: tuple[str, ...] = ()
    span: Span | None = None


@dataclass(frozen=True)
class Function:
    """A function an expression may call. Every argument is a literal of its kind: a string from
    ``names[kind]`` for ``"event"``, ``"list"``, ``"tier"`` and ``"layer"``, a number for ``"number"``."""

    args: tuple[ArgKind, ...]
    returns: Kind


class ConditionError(ValueError):
    """An expression that is not in the language. ``column`` is 1-based in ``expression``
    (0 if unknown); ``str(e)`` reads like ``column 7: unknown name 'scroe' (did you mean 'score'?)``."""

    def __init__(self, expression: str, column: int, reason: str):
        self.expression, self.column, self.reason = expression, column, reason
        super().__init__(f"column {column}: {reason}" if column else reason)


@dataclass(frozen=True)
class Condition:
    """A compiled expression.

    Attributes:
        source: the expression text.
        returns: ``"bool"`` (a mask) or ``"number"``.
        columns: names of the columns it reads.
        calls: ``(function name, literal args)`` of every call it makes.

    Calling it with ``columns[name] -> (n,) array`` (category columns hold integer codes) and
    ``call(fname, args) -> (n,) array`` gives a fresh (n,) bool or float64 array. Each distinct call is
    made once per evaluation. A constant expression takes n from any array in ``columns``.
    """

    source: str
    returns: Kind
    columns: frozenset[str]
    calls: frozenset[tuple[str, tuple]]
    _run: Callable[[_Env], Any] = field(repr=False, compare=False)
    span: Span = ANY
    """For a number expression: the range of its values given the columns' spans (infinite
    where unknown)."""

    def __call__(self, columns: Mapping[str, np.ndarray],
                 call: Callable[[str, tuple], np.ndarray]) -> np.ndarray:
        env = _Env(columns, call)
        with np.errstate(all="ignore"):
            out = self._run(env)
        dtype = np.bool_ if self.returns == "bool" else np.float64
        if isinstance(out, np.ndarray) and out.ndim == 1 and out.dtype == dtype and env.fresh(out):
            return out
        if np.ndim(out) == 0:  # a constant expression
            first = next(iter(columns.values()), None)
            if first is None:
                raise ValueError(f"{self.source!r} is constant: pass at least one column to give its length")
            out = np.broadcast_to(out, (len(first),))
        return np.array(out, dtype=dtype)


def compile_condition(
    text: str,
    columns: Mapping[str, Column],
    functions: Mapping[str, Function],
    names: Mapping[str, Collection[str]] = MappingProxyType({}),
    expect: Literal["bool", "number", "any"] = "bool",
) -> Condition:
    """Compile ``text`` into a :class:`Condition`, or raise :class:`ConditionError`.

    Args:
        text: the expression (see the module docstring for the language).
        columns: the citizen columns it may name.
        functions: the functions it may call, besides the built-in min, max, abs and clip (a declared
            function of the same name replaces the built-in).
        names: ``names["event" | "list" | "tier"]`` = the allowed string arguments of that kind;
            arguments of a kind missing here are not checked.
        expect: the result type required.
    """
    if expect not in ("bool", "number", "any"):
        raise ValueError(f"expect must be 'bool', 'number' or 'any'; got {expect!r}")
    if not isinstance(text, str):
        raise ConditionError(str(text), 0, f"an expression must be text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ConditionError(text, MAX_CHARS + 1, f"expression is {len(text)} characters long; at most "
                                                  f"{MAX_CHARS} are allowed")
    if "\0" in text:
        raise ConditionError(text, text.index("\0") + 1, "NUL characters are not allowed")
    body = text.lstrip()
    if not body:
        raise ConditionError(text, 0, "empty expression")
    compiler = _Compiler(text, len(text) - len(body), columns, functions, names)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        column = compiler.position(e.lineno, e.offset, chars=True) if e.lineno and e.offset else len(text) + 1
        raise ConditionError(text, min(column, len(text) + 1), f"syntax error: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ConditionError(text, 0, "expression is nested too deeply to parse") from None
    except ValueError as e:  # e.g. lone surrogates that cannot be encoded
        raise ConditionError(text, 0, f"unreadable expression: {e}") from None
    compiler.check_size(tree.body)
    root = compiler.visit(tree.body)
    if root.kind == "category":
        raise compiler.error(tree.body, f"{_describe(root)} is not a value; compare it with a label, "
                                        f"e.g. {_example(root)}")
    if root.kind in ("label", "labels"):
        raise compiler.error(tree.body, _STRINGS)
    if expect != "any" and root.kind != expect:
        want = "a true/false condition" if expect == "bool" else "a number"
        hint = " (did you mean a comparison such as '... > 0'?)" if expect == "bool" else ""
        raise compiler.error(tree.body, f"expected {want}, but the expression gives {_describe(root)}{hint}")
    return Condition(text, root.kind, frozenset(compiler.read), frozenset(compiler.calls), root.run,
                     root.span if root.kind == "number" else ANY)


# --- evaluation --------------------------------------------------------------------------------------

class _Env:
    """What one evaluation sees: the columns, the call hook and a memo of calls already made."""

    def __init__(self, columns: Mapping[str, np.ndarray], call: Callable[[str, tuple], np.ndarray]):
        self.columns, self.call_hook, self.memo = columns, call, {}
        self.borrowed: list[np.ndarray] = []

    def column(self, name: str, dtype: type | None) -> np.ndarray:
        out = np.asarray(self.columns[name], dtype=dtype)
        self.borrowed.append(out)
        return out

    def call(self, key: tuple[str, tuple], dtype: type) -> np.ndarray:
        if key not in self.memo:
            self.memo[key] = np.asarray(self.call_hook(*key), dtype=dtype)
        return self.memo[key]

    def fresh(self, out: np.ndarray) -> bool:
        """Whether ``out`` is a new array, not a caller's column or call result."""
        return not any(np.may_share_memory(out, a) for a in [*self.borrowed, *self.memo.values()])


def _divide(a: Any, b: Any) -> np.ndarray:
    """a / b elementwise, 0 where b == 0."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


def _clip(x: Any, lo: Any, hi: Any) -> np.ndarray:
    return np.minimum(np.maximum(x, lo), hi)


def _span(values: list[float]) -> Span:
    """The range of some candidate extreme values; a nan (inf - inf, 0 * inf) means unknown."""
    if any(math.isnan(v) for v in values):
        return ANY
    return min(values), max(values)


def _finite(*spans: Span) -> bool:
    return all(math.isfinite(x) for span in spans for x in span)


def _times(a: float, b: float) -> float:
    """a * b for range ends, where 0 times an unbounded end is 0 (every value is finite)."""
    return 0.0 if a == 0 or b == 0 else a * b


def _span_of(op: type, a: Span, b: Span) -> Span:
    """The range of ``a op b`` for the four arithmetic operators (with ``x / 0 == 0``)."""
    if op is ast.Add:
        return _span([a[0] + b[0], a[1] + b[1]])
    if op is ast.Sub:
        return _span([a[0] - b[1], a[1] - b[0]])
    if op is ast.Mult:
        return _span([_times(x, y) for x in a for y in b])
    if b == (0.0, 0.0) or a == (0.0, 0.0):
        return 0.0, 0.0
    if b[0] <= 0 <= b[1]:
        return ANY  # the divisor can be near 0: any size
    return _span([x / y for x in a for y in b])  # monotone in each; inf / inf is nan: unknown


_ARITHMETIC = {ast.Add: (np.add, "+"), ast.Sub: (np.subtract, "-"), ast.Mult: (np.multiply, "*"),
               ast.Div: (_divide, "/")}
_ORDER = {ast.Lt: (np.less, "<"), ast.LtE: (np.less_equal, "<="), ast.Gt: (np.greater, ">"),
          ast.GtE: (np.greater_equal, ">=")}
_EQUALITY = {ast.Eq: (np.equal, "=="), ast.NotEq: (np.not_equal, "!=")}
_REFUSED_OPS = {ast.Pow: "'**'", ast.FloorDiv: "'//'", ast.Mod: "'%'", ast.MatMult: "'@'",
                ast.BitAnd: "'&' (use 'and')", ast.BitOr: "'|' (use 'or')", ast.BitXor: "'^'",
                ast.LShift: "'<<'", ast.RShift: "'>>'", ast.Invert: "'~' (use 'not')"}
_REFUSED = {
    ast.Attribute: "attribute access ('.name') is not allowed",
    ast.Subscript: "subscripts ('[...]') are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed", ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed", ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Dict: "dict literals are not allowed", ast.Set: "set literals are not allowed",
    ast.Tuple: "a tuple is only allowed after 'in', as a list of labels: region in (\"a\", \"b\")",
    ast.List: "a list is only allowed after 'in', as a list of labels: region in [\"a\", \"b\"]",
    ast.Await: "'await' is not allowed", ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}
_BUILTINS = {"min": (2, None), "max": (2, None), "abs": (1, 1), "clip": (3, 3)}
_BOOL_NAMES = {"true": True, "false": False}
_IN_EXAMPLE = 'region in ("urban", "rural")'
_STRINGS = "strings are only allowed as function arguments or as labels of a category column"


# --- compilation -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Node:
    """A compiled sub-expression: its type and how to evaluate it. Category nodes keep the column's
    name and labels; label nodes (string literals and tuples of them, legal only in comparisons) keep
    their text in ``labels`` and have no ``run``."""

    kind: Literal["number", "bool", "category", "label", "labels"]
    run: Callable[[_Env], Any] = lambda env: None
    name: str = ""
    labels: tuple[str, ...] = ()
    span: Span = ANY


def _describe(node: _Node) -> str:
    if node.kind == "category":
        return f"the category column '{node.name}'"
    if node.kind == "label":
        return f"the string \"{node.labels[0]}\""
    return {"number": "a number", "bool": "a true/false value", "labels": "a tuple of strings"}[node.kind]


def _example(category: _Node) -> str:
    return f"{category.name} == \"{category.labels[0] if category.labels else '...'}\""


def _suggest(word: str, options: Collection[str]) -> str:
    """' (did you mean 'x'?)', or the options themselves if few, or ''."""
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
    if 0 < len(options) <= 16:
        return " (known: " + ", ".join(sorted(options)) + ")"
    return ""


class _Compiler:
    """Type-checks an AST and builds its closure; one method per allowed node type."""

    def __init__(self, text: str, shift: int, columns: Mapping[str, Column],
                 functions: Mapping[str, Function], names: Mapping[str, Collection[str]]):
        self.text, self.shift = text, shift
        self.columns, self.functions, self.names = columns, functions, names
        body = text[shift:]
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", body)]
        self.lines = [body[a:b] for a, b in zip(self.starts, [*self.starts[1:], len(body)], strict=True)]
        self.read: set[str] = set()
        self.calls: set[tuple[str, tuple]] = set()
        self.visitors: dict[type, Callable[[Any], _Node]] = {
            ast.Constant: self.constant, ast.Name: self.name, ast.UnaryOp: self.unary, ast.BinOp: self.binary,
            ast.BoolOp: self.logic, ast.Compare: self.compare, ast.IfExp: self.choice, ast.Call: self.call}

    # positions and errors
    def position(self, lineno: int, offset: int, chars: bool = False) -> int:
        """1-based column in the text of a (1-based line, 0-based UTF-8 byte offset) AST position,
        or of a (1-based line, 1-based character offset) SyntaxError position if ``chars``."""
        if not 1 <= lineno <= len(self.lines):
            return len(self.text) + 1
        line = self.lines[lineno - 1]
        if chars:
            within = offset - 1
        else:
            within = len(line.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "ignore"))
        return self.shift + self.starts[lineno - 1] + within + 1

    def error(self, node: ast.AST, reason: str) -> ConditionError:
        return ConditionError(self.text, self.position(node.lineno, node.col_offset), reason)

    def check_size(self, root: ast.expr) -> None:
        """Refuse trees with too many nodes or nested too deeply, without recursion."""
        nodes, stack = [], [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, ast.expr):
                if depth > MAX_DEPTH:
                    raise self.error(node, f"expression is nested more than {MAX_DEPTH} deep")
                nodes.append(node)
            stack.extend((c, depth + isinstance(c, ast.expr)) for c in ast.iter_child_nodes(node))
        if len(nodes) > MAX_NODES:
            last = sorted(nodes, key=lambda n: (n.lineno, n.col_offset))[MAX_NODES]
            raise self.error(last, f"expression has {len(nodes)} parts; at most {MAX_NODES} are allowed")

    def need(self, node: ast.expr, compiled: _Node, kind: str, what: str) -> _Node:
        if compiled.kind != kind:
            want = {"number": "a number", "bool": "a true/false value"}[kind]
            hint = f"; compare it, e.g. {_example(compiled)}" if compiled.kind == "category" else ""
            raise self.error(node, f"{what} needs {want}, got {_describe(compiled)}{hint}")
        return compiled

    # visitors
    def visit(self, node: ast.expr) -> _Node:
        visitor = self.visitors.get(type(node))
        if visitor is not None:
            return visitor(node)
        if type(node) in _REFUSED:
            raise self.error(node, _REFUSED[type(node)])
        raise self.error(node, f"{type(node).__name__} is not allowed in a condition")

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool):
            return _Node("bool", lambda env: value)
        if isinstance(value, int | float):
            run = self.number(node)
            return _Node("number", run, span=(run(None), run(None)))
        if isinstance(value, str):
            return _Node("label", labels=(value,))
        what = "None" if value is None else f"{type(value).__name__} literals"
        raise self.error(node, f"{what} is not allowed")

    def number(self, node: ast.Constant) -> Callable[[_Env], float]:
        try:
            value = float(node.value)
        except OverflowError:
            value = float("inf")
        if not np.isfinite(value):
            raise self.error(node, "numbers must be finite")
        return lambda env: value

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in _BOOL_NAMES:
            flag = _BOOL_NAMES[name]
            return _Node("bool", lambda env: flag)
        column = self.columns.get(name)
        if column is None:
            if name in self.functions or name in _BUILTINS:
                raise self.error(node, f"'{name}' is a function; call it, e.g. {name}(...)")
            raise self.error(node, f"unknown name '{name}'{_suggest(name, [*self.columns, 'true', 'false'])}")
        self.read.add(name)
        if column.kind == "category":
            return _Node("category", lambda env: env.column(name, None), name=name, labels=column.labels)
        return _Node("number", lambda env: env.column(name, np.float64), name=name, span=column.span or ANY)

    def unary(self, node: ast.UnaryOp) -> _Node:
        if type(node.op) in _REFUSED_OPS:
            raise self.error(node, f"{_REFUSED_OPS[type(node.op)]} is not allowed")
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            run = self.need(node.operand, operand, "bool", "'not'").run
            return _Node("bool", lambda env: np.logical_not(run(env)))
        run = self.need(node.operand, operand, "number", "unary '-'/'+'").run
        if isinstance(node.op, ast.UAdd):
            return _Node("number", run, span=operand.span)
        return _Node("number", lambda env: np.negative(run(env)), span=(-operand.span[1], -operand.span[0]))

    def binary(self, node: ast.BinOp) -> _Node:
        if type(node.op) not in _ARITHMETIC:
            what = _REFUSED_OPS.get(type(node.op), type(node.op).__name__)
            raise self.error(node, f"{what} is not allowed")
        op, symbol = _ARITHMETIC[type(node.op)]
        a = self.need(node.left, self.visit(node.left), "number", f"'{symbol}'")
        b = self.need(node.right, self.visit(node.right), "number", f"'{symbol}'")
        left, right = a.run, b.run
        span = self.bounded(node, symbol, _span_of(type(node.op), a.span, b.span), a.span, b.span)
        return _Node("number", lambda env: op(left(env), right(env)), span=span)

    def bounded(self, node: ast.expr, symbol: str, span: Span, *inputs: Span) -> Span:
        """``span``, or an error if bounded inputs give an unbounded result: an overflow (but a
        division by something that can be near 0 is merely of unknown size)."""
        if _finite(*inputs) and not _finite(span) and not (symbol == "/" and span == ANY):
            big = max(abs(x) for x in (*span, *(v for i in inputs for v in i)) if math.isfinite(x))
            raise self.error(node, f"'{symbol}' can overflow: with values up to {big:.3g} here the result "
                                   "can exceed the largest number (about 1.8e308)")
        return span

    def logic(self, node: ast.BoolOp) -> _Node:
        word, op = ("and", np.logical_and) if isinstance(node.op, ast.And) else ("or", np.logical_or)
        compiled = [self.visit(v) for v in node.values]
        runs = [self.need(v, c, "bool", f"'{word}'").run for v, c in zip(node.values, compiled, strict=True)]
        return _Node("bool", lambda env: reduce(op, (r(env) for r in runs)))

    def choice(self, node: ast.IfExp) -> _Node:
        test, body, orelse = self.visit(node.test), self.visit(node.body), self.visit(node.orelse)
        test_run = self.need(node.test, test, "bool", "'if'").run
        if body.kind not in ("number", "bool"):
            raise self.error(node.body, f"'if ... else' branches must be numbers or true/false values, "
                                        f"got {_describe(body)}")
        self.need(node.orelse, orelse, body.kind, "the 'else' branch (like the 'if' branch)")
        span = (min(body.span[0], orelse.span[0]), max(body.span[1], orelse.span[1]))
        return _Node(body.kind, lambda env: np.where(test_run(env), body.run(env), orelse.run(env)),
                     span=span)

    def compare(self, node: ast.Compare) -> _Node:
        asts = [node.left, *node.comparators]
        operands = [self.labels(a) if isinstance(a, ast.Tuple | ast.List) else self.visit(a) for a in asts]
        tests = [self.pair(asts[i], operands[i], op, asts[i + 1], operands[i + 1])
                 for i, op in enumerate(node.ops)]
        runs = [o.run for o in operands]

        def run(env: _Env) -> Any:
            values = [r(env) for r in runs]
            return reduce(np.logical_and, (t(values[i], values[i + 1]) for i, t in enumerate(tests)))
        return _Node("bool", run)

    def labels(self, node: ast.Tuple | ast.List) -> _Node:
        for item in node.elts:
            if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                raise self.error(item, f"after 'in' give labels (strings), e.g. {_IN_EXAMPLE}")
        return _Node("labels", labels=tuple(item.value for item in node.elts))

    def code(self, node: ast.expr, category: _Node, label: str) -> int:
        if label not in category.labels:
            hint = _suggest(label, category.labels)
            raise self.error(node, f"unknown label '{label}' for '{category.name}'{hint}")
        return category.labels.index(label)

    def pair(self, la: ast.expr, a: _Node, op: ast.cmpop, lb: ast.expr, b: _Node) -> Callable[..., Any]:
        """The test ``a op b`` as a function of the two evaluated operands."""
        kinds = (a.kind, b.kind)
        if isinstance(op, ast.Is | ast.IsNot):
            raise self.error(la, "'is' is not allowed; use == or !=")
        if isinstance(op, ast.In | ast.NotIn):
            word = "'in'" if isinstance(op, ast.In) else "'not in'"
            if kinds != ("category", "labels"):
                raise self.error(la, f"{word} needs a category column and a tuple of its labels, e.g. "
                                     f"{_IN_EXAMPLE}; got {_describe(a)} and {_describe(b)}")
            member = np.zeros(max(len(a.labels), 1), dtype=bool)  # a lookup by code
            member[[self.code(lb, a, label) for label in b.labels]] = True
            if isinstance(op, ast.NotIn):
                member = ~member
            return lambda x, _: member[x]
        if "labels" in kinds:
            raise self.error(lb if b.kind == "labels" else la, "a tuple of labels is only allowed after 'in'")
        if "label" in kinds or "category" in kinds:
            if type(op) not in _EQUALITY:
                raise self.error(la, "categories and strings can only be compared with ==, != or in")
            test = _EQUALITY[type(op)][0]
            if kinds == ("category", "label"):
                k = self.code(lb, a, b.labels[0])
                return lambda x, _: test(x, k)
            if kinds == ("label", "category"):
                k = self.code(la, b, a.labels[0])
                return lambda _, y: test(y, k)
            if kinds == ("category", "category") and a.labels == b.labels:
                return test
            if kinds == ("category", "category"):
                raise self.error(la, f"'{a.name}' and '{b.name}' have different labels: not comparable")
            category = a if a.kind == "category" else b
            hint = _STRINGS if "label" in kinds else f"compare it with a label, e.g. {_example(category)}"
            raise self.error(la, f"cannot compare {_describe(a)} with {_describe(b)}; {hint}")
        if kinds == ("number", "number"):
            return {**_ORDER, **_EQUALITY}[type(op)][0]
        if kinds == ("bool", "bool") and type(op) in _EQUALITY:
            return _EQUALITY[type(op)][0]
        symbol = {**_ORDER, **_EQUALITY}[type(op)][1]
        raise self.error(la, f"cannot compare {_describe(a)} with {_describe(b)} using {symbol}")

    def call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self.error(node.func, "only a plain function name can be called, e.g. min(a, b)")
        name = node.func.id
        if node.keywords:
            raise self.error(node.keywords[0].value, "keyword arguments are not allowed")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, _REFUSED[ast.Starred])
        if name in self.functions:
            return self.declared(node, name, self.functions[name])
        if name not in _BUILTINS:
            if name in self.columns:
                raise self.error(node.func, f"'{name}' is a column, not a function")
            hint = _suggest(name, [*self.functions, *_BUILTINS])
            raise self.error(node.func, f"unknown function '{name}'{hint}")
        least, most = _BUILTINS[name]
        if not least <= len(node.args) <= (most or len(node.args)):
            want = f"{least} argument{'s' * (least > 1)}" if least == most else f"at least {least} arguments"
            raise self.error(node, f"{name}() takes {want}, got {len(node.args)}")
        args = [self.need(a, self.visit(a), "number", f"{name}()") for a in node.args]
        runs = [a.run for a in args]
        spans = [a.span for a in args]
        if name == "abs":
            (lo, hi), = spans
            span = (lo, hi) if lo >= 0 else (-hi, -lo) if hi <= 0 else (0.0, max(-lo, hi))
            return _Node("number", lambda env: np.abs(runs[0](env)), span=span)
        if name == "clip":
            (x0, x1), (lo0, lo1), (hi0, hi1) = spans
            span = (min(max(x0, lo0), hi0), min(max(x1, lo1), hi1))
            return _Node("number", lambda env: _clip(*(r(env) for r in runs)), span=span)
        op, pick = (np.minimum, min) if name == "min" else (np.maximum, max)
        span = (pick(s[0] for s in spans), pick(s[1] for s in spans))
        return _Node("number", lambda env: reduce(op, (r(env) for r in runs)), span=span)

    def declared(self, node: ast.Call, name: str, function: Function) -> _Node:
        if len(node.args) != len(function.args):
            raise self.error(node, f"{name}() takes {len(function.args)} argument(s) "
                                   f"({', '.join(function.args)}), got {len(node.args)}")
        args = tuple(self.literal(a, kind, name) for a, kind in zip(node.args, function.args, strict=True))
        key = (name, args)
        self.calls.add(key)
        dtype = np.bool_ if function.returns == "bool" else np.float64
        return _Node(function.returns, lambda env: env.call(key, dtype))

    def literal(self, node: ast.expr, kind: str, fname: str) -> str | int | float:
        """A declared function's argument: a known string of its kind, or a (signed) number."""
        if kind == "number":
            sign, inner = 1, node
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
                sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
            if not (isinstance(inner, ast.Constant) and isinstance(inner.value, int | float)
                    and not isinstance(inner.value, bool)):
                raise self.error(node, f"{fname}() needs a number literal here, e.g. 30")
            self.number(inner)
            return sign * inner.value
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            raise self.error(node, f"{fname}() needs the name of {'an' if kind == 'event' else 'a'} {kind} "
                                   f"here, in quotes, e.g. {fname}(\"...\")")
        known = self.names.get(kind)
        if known is not None and node.value not in known:
            raise self.error(node, f"unknown {kind} '{node.value}'{_suggest(node.value, known)}")
        return node.value
