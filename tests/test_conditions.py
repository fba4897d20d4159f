"""Policy conditions: the safe expression language, its NumPy semantics, refusals, error columns and caps."""

from __future__ import annotations

import ast
import builtins
import functools
import os
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from panopticon.policy.conditions import (
    MAX_CHARS,
    MAX_DEPTH,
    MAX_NODES,
    Column,
    Condition,
    ConditionError,
    Function,
    compile_condition,
)

COLUMNS = {
    "score": Column("number"), "rank": Column("number"), "age": Column("number"),
    "credit": Column("number"), "capacity": Column("number"),
    "region": Column("category", ("rural", "urban")),
    "home": Column("category", ("rural", "urban")),
    "occupation": Column("category", ("official", "worker", "farmer")),
}
FUNCTIONS = {
    "days_since": Function(("event",), "number"),
    "listed": Function(("list",), "bool"),
    "count": Function(("event", "number"), "number"),
    "tier_is": Function(("tier",), "bool"),
}
NAMES = {"event": ("drunk_driving", "late_loan_payment"), "list": ("court_defaulter", "redlist"),
         "tier": ("A", "B", "C")}

# Six hand-built citizens.
POPULATION = {
    "score": np.array([550, 650, 590, 599, 600, 300], dtype=np.int64),
    "rank": np.array([1, 3, 4, 2, 3, 5], dtype=np.int64),
    "age": np.array([17, 18, 40, 65, 30, 16], dtype=np.int64),
    "credit": np.array([0.0, 1.0, 0.5, 0.2, 1.0, 0.0]),
    "capacity": np.array([0.0, 1.0, 0.2, 0.4, 0.0, 1.0]),
    "region": np.array([0, 1, 1, 0, 1, 0], dtype=np.int8),  # rural urban urban rural urban rural
    "home": np.array([0, 0, 1, 1, 1, 0], dtype=np.int8),
    "occupation": np.array([0, 1, 2, 1, 0, 2], dtype=np.int8),  # official worker farmer worker official ...
}
CALLS = {
    ("days_since", ("drunk_driving",)): np.array([100, 10, 400, np.inf, 364, 366]),
    ("listed", ("court_defaulter",)): np.array([False, False, False, True, True, False]),
    ("count", ("late_loan_payment", 30)): np.array([0, 1, 2, 0, 5, 1]),
    ("tier_is", ("C",)): np.array([True, False, False, False, False, True]),
}


def call(fname: str, args: tuple) -> np.ndarray:
    """The call hook of the hand-built population."""
    return CALLS[(fname, args)]


def run(text: str, expect: str = "any", **kwargs) -> np.ndarray:
    """Compile ``text`` against the test columns and functions and evaluate it on :data:`POPULATION`."""
    return compile_condition(text, COLUMNS, FUNCTIONS, NAMES, expect=expect, **kwargs)(POPULATION, call)


def refusal(text: str, **kwargs) -> ConditionError:
    """The ConditionError that compiling ``text`` raises."""
    with pytest.raises(ConditionError) as info:
        compile_condition(text, COLUMNS, FUNCTIONS, NAMES, **{"expect": "any", **kwargs})
    return info.value


# --- hand-worked examples ------------------------------------------------------------------------------

def test_issue_example_gives_hand_worked_mask():
    """score < 600 and (drunk driving within a year or court defaulter) holds for citizens 0 and 3 only;
    worked out row by row below."""
    text = 'score < 600 and (days_since("drunk_driving") < 365 or listed("court_defaulter"))'
    cond = compile_condition(text, COLUMNS, FUNCTIONS, NAMES)
    # score<600: T F T T F T; days<365: T T F F T F; listed: F F F T T F
    # or:        T T F T T F; and:     T F F T F F
    assert cond.returns == "bool"
    assert cond.columns == {"score"}
    assert cond.calls == {("days_since", ("drunk_driving",)), ("listed", ("court_defaulter",))}
    np.testing.assert_array_equal(cond(POPULATION, call), [True, False, False, True, False, False])


def test_categorical_comparisons_use_labels():
    """Labels compare with codes through ==, !=, in and not in, in either order."""
    np.testing.assert_array_equal(run('region == "urban"'), [False, True, True, False, True, False])
    np.testing.assert_array_equal(run('"urban" != region'), [True, False, False, True, False, True])
    np.testing.assert_array_equal(run('occupation in ("official", "worker")'), [1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(run('occupation not in ["farmer"]'), [1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(run('region == "urban" and age >= 18'), [0, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(run("region == home"), [1, 0, 1, 0, 1, 1])


def test_arithmetic_follows_python_precedence():
    """350 + 600 * (0.35 * credit + 0.25 * capacity): citizen 1 = 350 + 600 * 0.6 = 710, citizen 2 =
    350 + 600 * (0.175 + 0.05) = 485."""
    out = run("350 + 600 * (0.35 * credit + 0.25 * capacity)", expect="number")
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [350, 710, 485, 452, 560, 500])
    np.testing.assert_allclose(run('-10 * count("late_loan_payment", 30)'), [0, -10, -20, 0, -50, -10])
    np.testing.assert_allclose(run("-score + +rank - 2 * 3"), -POPULATION["score"] + POPULATION["rank"] - 6)


def test_division_by_zero_gives_zero_without_warning():
    """score / (rank - 3) is 0 where rank == 3, with no warning, inf or nan."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run("score / (rank - 3)")
        zero = run("1 / 0")
    np.testing.assert_allclose(out, [-275, 0, 590, -599, 0, 150])
    np.testing.assert_array_equal(zero, np.zeros(6))


def test_chained_comparisons_are_conjunctions():
    """0 < x <= y is 0 < x and x <= y."""
    np.testing.assert_array_equal(run("2 < rank <= 4"), [False, True, True, False, True, False])
    np.testing.assert_array_equal(run("18 <= age < 65 != rank"), [False, True, True, False, True, False])


def test_if_else_picks_elementwise():
    """x if cond else y takes x where cond holds, y elsewhere; bool branches give a mask."""
    np.testing.assert_allclose(run("score if rank >= 3 else 0"), [0, 650, 590, 0, 600, 300])
    np.testing.assert_array_equal(run('listed("court_defaulter") if age >= 18 else true'), [1, 0, 0, 1, 1, 1])


def test_min_max_abs_clip_are_elementwise():
    """min/max take two or more numbers; clip(x, lo, hi) = min(max(x, lo), hi); abs is absolute value."""
    np.testing.assert_allclose(run("min(score, 599)"), [550, 599, 590, 599, 599, 300])
    np.testing.assert_allclose(run("max(score, 560, rank * 150)"), [560, 650, 600, 599, 600, 750])
    np.testing.assert_allclose(run("clip(score, 400, 600)"), [550, 600, 590, 599, 600, 400])
    np.testing.assert_allclose(run("abs(score - 600)"), [50, 50, 10, 1, 0, 300])


def test_true_false_literals_in_both_spellings():
    """True/False and true/false are booleans; constants broadcast to the population."""
    np.testing.assert_array_equal(run("true and not False"), np.ones(6, bool))
    np.testing.assert_allclose(run("1 + 2"), np.full(6, 3.0))


def test_each_call_is_made_once_per_evaluation():
    """A call repeated in the expression reaches the hook once, with its literal arguments."""
    seen = []
    cond = compile_condition('days_since("drunk_driving") < 30 or days_since("drunk_driving") > 365 '
                             'or tier_is("C")', COLUMNS, FUNCTIONS, NAMES)
    cond(POPULATION, lambda f, a: seen.append((f, a)) or CALLS[(f, a)])
    assert sorted(seen) == [("days_since", ("drunk_driving",)), ("tier_is", ("C",))]


def test_result_is_a_fresh_array():
    """Mutating a result never touches the population's columns or call results."""
    columns = {"score": np.array([1.0, 2.0])}
    out = compile_condition("+score", {"score": Column("number")}, {}, expect="number")(columns, call)
    out[:] = 0
    np.testing.assert_array_equal(columns["score"], [1.0, 2.0])
    listed = np.array([True, False])
    out = compile_condition('listed("x")', {}, FUNCTIONS)({"score": columns["score"]}, lambda f, a: listed)
    out[:] = False
    np.testing.assert_array_equal(listed, [True, False])


def test_condition_records_source_and_type():
    """A Condition keeps its source, result type, columns read and calls made."""
    cond = compile_condition("min(score, 849)", COLUMNS, FUNCTIONS, NAMES, expect="number")
    assert isinstance(cond, Condition)
    assert (cond.source, cond.returns, cond.columns, cond.calls) == ("min(score, 849)", "number",
                                                                     frozenset({"score"}), frozenset())


def test_names_missing_a_kind_are_not_checked():
    """A string argument is only checked against names[kind] when names has that kind."""
    cond = compile_condition('listed("anything")', COLUMNS, FUNCTIONS)
    assert cond.calls == {("listed", ("anything",))}


# --- errors: what and where ----------------------------------------------------------------------------

def test_unknown_name_points_at_its_column_with_a_suggestion():
    """An unknown name is reported at its own column with a did-you-mean."""
    assert str(refusal("scroe < 600")) == "column 1: unknown name 'scroe' (did you mean 'score'?)"
    error = refusal("rank >= 3 and scroe < 600")
    assert (error.column, error.reason) == (15, "unknown name 'scroe' (did you mean 'score'?)")
    assert error.expression == "rank >= 3 and scroe < 600"


def test_columns_count_characters_not_bytes_and_include_leading_space():
    """Columns are 1-based characters of the whole text, across non-ASCII text, indentation and lines."""
    with pytest.raises(ConditionError) as info:
        compile_condition('listed("äöü") or scroe > 1', COLUMNS, FUNCTIONS)
    assert info.value.column == 18
    assert refusal("  scroe > 1").column == 3
    assert refusal("(score > 1 and\n scroe < 2)").column == 17


def test_unknown_strings_name_their_kind_and_close_matches():
    """Unknown labels, events and lists are refused at the string, naming what was expected."""
    error = refusal('region == "urbn"')
    assert error.column == 11
    assert error.reason == "unknown label 'urbn' for 'region' (did you mean 'urban'?)"
    error = refusal('score < 1 or days_since("drunk_drivng") < 9')
    assert error.column == 25
    assert error.reason == "unknown event 'drunk_drivng' (did you mean 'drunk_driving'?)"
    assert "unknown list 'x' (known: court_defaulter, redlist)" in refusal('listed("x")').reason


@pytest.mark.parametrize(("text", "column", "expected"), [
    ("not score", 5, "'not' needs a true/false value, got a number"),
    ('score + listed("redlist")', 9, "'+' needs a number, got a true/false value"),
    ("score and rank > 1", 1, "'and' needs a true/false value"),
    ("region + 1", 1, "'+' needs a number, got the category column 'region'"),
    ("region == 1", 1, "cannot compare the category column 'region' with a number"),
    ("region < \"urban\"", 1, "only be compared with ==, != or in"),
    ("region == occupation", 1, "different labels"),
    ("score in (\"a\",)", 1, "'in' needs a category column"),
    ("score == true", 1, "cannot compare a number with a true/false value"),
    ("true < false", 1, "cannot compare a true/false value with a true/false value using <"),
    ("score if rank else 1", 10, "'if' needs a true/false value"),
    ("1 if rank > 1 else rank > 2", 20, "the 'else' branch"),
    ('"abc"', 1, "strings are only allowed as function arguments"),
    ('"a" == "b"', 1, "strings are only allowed"),
    ("region", 1, 'compare it with a label, e.g. region == "rural"'),
    ("min(score)", 1, "min() takes at least 2 arguments, got 1"),
    ("clip(score, 1)", 1, "clip() takes 3 arguments"),
    ("listed()", 1, "listed() takes 1 argument(s) (list), got 0"),
    ("count(\"drunk_driving\", rank)", 24, "count() needs a number literal"),
    ("listed(redlist)", 8, "needs the name of a list here, in quotes"),
    ("listed", 1, "'listed' is a function; call it"),
    ("score(1)", 1, "'score' is a column, not a function"),
    ("lsted(\"redlist\")", 1, "unknown function 'lsted' (did you mean 'listed'?)"),
    ("1e999 > score", 1, "numbers must be finite"),
    ("None", 1, "None is not allowed"),
])
def test_type_errors_name_the_expected_thing(text, column, expected):
    """Type errors are refused at compile time, at the offending column, saying what was expected."""
    error = refusal(text)
    assert error.column == column, str(error)
    assert expected in error.reason, str(error)


def test_expect_checks_the_result_type():
    """expect='bool' refuses numbers and expect='number' refuses masks; 'any' takes both; others are bugs."""
    assert "expected a true/false condition" in refusal("score + 1", expect="bool").reason
    assert "expected a number" in refusal("score > 1", expect="number").reason
    assert compile_condition("score > 1", COLUMNS, {}, expect="any").returns == "bool"
    with pytest.raises(ValueError, match="expect must be"):
        compile_condition("score > 1", COLUMNS, {}, expect="mask")


@pytest.mark.parametrize(("text", "column", "expected"), [
    ("score.real > 1", 1, "attribute access"),
    ("().__class__", 1, "attribute access"),
    ("score[0] > 1", 1, "subscripts"),
    ("score ** 2 > 1", 1, "'**'"),
    ("score // 2 > 1", 1, "'//'"),
    ("score % 2 > 1", 1, "'%'"),
    ("score @ score > 1", 1, "'@'"),
    ("rank > 1 & rank < 3", 8, "'&' (use 'and')"),
    ("~(rank > 1)", 1, "'~' (use 'not')"),
    ("lambda: 0", 1, "lambda"),
    ("[x for x in y]", 1, "comprehensions"),
    ("(x for x in y)", 1, "generator"),
    ('f"{score}"', 1, "f-strings"),
    ("(x := 1)", 2, "':='"),
    ("min(*score)", 5, "'*' unpacking"),
    ("min(score, rank, key=1)", 22, "keyword arguments"),
    ("score.__class__(1)", 1, "only a plain function name"),
    ("{1: 2}", 1, "dict literals"),
    ("{1}", 1, "set literals"),
    ("score is 1", 1, "'is' is not allowed"),
    ("(1, 2)", 1, "a tuple is only allowed after 'in'"),
    ('region == ("urban",)', 11, "a tuple of labels is only allowed after 'in'"),
    ("score < 600 )", 13, "syntax error: unmatched ')'"),
    ("score <", 8, "syntax error"),
    ("score = 1", 7, "syntax error"),
    ("", 0, "empty expression"),
    ("score\0 > 1", 6, "NUL"),
])
def test_refused_constructs_say_why(text, column, expected):
    """Everything outside the allow-list is refused with a reason, at its column."""
    error = refusal(text)
    assert error.column == column, str(error)
    assert expected in error.reason, str(error)


# --- caps ----------------------------------------------------------------------------------------------

def test_length_cap_is_500_characters():
    """A 500-character expression compiles; 501 characters is refused."""
    ok = "score > 1" + " " * (MAX_CHARS - 9)
    assert len(ok) == MAX_CHARS == 500
    compile_condition(ok, COLUMNS, {})
    error = refusal(ok + " ")
    assert "501 characters" in error.reason and "at most 500" in error.reason


def test_nesting_cap_is_30_levels():
    """30 nested calls compile; 31 are refused, at the innermost too-deep node."""
    assert MAX_DEPTH == 30
    compile_condition("abs(" * 30 + "score" + ")" * 30, COLUMNS, {}, expect="number")
    error = refusal("abs(" * 31 + "score" + ")" * 31)
    assert "nested more than 30 deep" in error.reason
    assert "nested more than 30" in refusal("-" * 31 + "score").reason
    assert "nested more than 30" in refusal("not " * 31 + "true").reason


def test_node_cap_is_200_parts():
    """min(...) with 198 arguments (200 nodes) compiles; one more argument is refused."""
    assert MAX_NODES == 200
    compile_condition("min(" + ",".join(["1"] * 198) + ")", COLUMNS, {}, expect="number")
    error = refusal("min(" + ",".join(["1"] * 199) + ")")
    assert "201 parts" in error.reason and error.column == 4 + 2 * 199 - 1


def test_parser_exhaustion_becomes_condition_error():
    """Parentheses too deep for Python's parser are a ConditionError, not a crash."""
    error = refusal("(" * 201 + "1" + ")" * 201)
    assert "syntax error" in error.reason or "nested" in error.reason


def test_non_text_is_refused():
    """A non-string expression (e.g. a YAML number) is a ConditionError."""
    assert "must be text" in refusal(600).reason


# --- property: compiled expressions agree with a reference evaluator -----------------------------------

NUMBER_COLUMNS = ("a", "b", "c")
TREE_COLUMNS = {name: Column("number") for name in NUMBER_COLUMNS}
ARITH = ("+", "-", "*", "/")
COMPARE = ("<", "<=", ">", ">=", "==", "!=")


@functools.cache
def numbers(depth: int) -> st.SearchStrategy:
    """Number-valued expression trees as tuples: ("num", v), ("col", name), ("bin", op, l, r),
    ("neg", x), ("if", cond, x, y)."""
    leaf = st.one_of(st.integers(-5, 5).map(lambda v: ("num", v)),
                     st.sampled_from(NUMBER_COLUMNS).map(lambda c: ("col", c)))
    if depth == 0:
        return leaf
    sub = numbers(depth - 1)
    return st.one_of(leaf, st.tuples(st.just("bin"), st.sampled_from(ARITH), sub, sub),
                     st.tuples(st.just("neg"), sub), st.tuples(st.just("if"), bools(depth - 1), sub, sub))


@functools.cache
def bools(depth: int) -> st.SearchStrategy:
    """Bool-valued trees: ("lit", b), ("cmp", ops, operands), ("and"|"or", values), ("not", x)."""
    chain = st.integers(1, 3).flatmap(lambda k: st.tuples(
        st.just("cmp"), st.lists(st.sampled_from(COMPARE), min_size=k, max_size=k),
        st.lists(numbers(max(depth - 1, 0)), min_size=k + 1, max_size=k + 1)))
    leaf = st.one_of(st.booleans().map(lambda b: ("lit", b)), chain)
    if depth == 0:
        return leaf
    sub = bools(depth - 1)
    return st.one_of(leaf, st.tuples(st.sampled_from(["and", "or"]), st.lists(sub, min_size=2, max_size=3)),
                     st.tuples(st.just("not"), sub))


def render(tree: tuple) -> str:
    """The tree as expression text, fully parenthesised."""
    tag = tree[0]
    if tag == "num":
        return str(tree[1]) if tree[1] >= 0 else f"({tree[1]})"
    if tag == "col":
        return tree[1]
    if tag == "lit":
        return "true" if tree[1] else "False"
    if tag == "bin":
        return f"({render(tree[2])} {tree[1]} {render(tree[3])})"
    if tag == "neg":
        return f"(-{render(tree[1])})"
    if tag == "not":
        return f"(not {render(tree[1])})"
    if tag == "if":
        return f"({render(tree[2])} if {render(tree[1])} else {render(tree[3])})"
    if tag == "cmp":
        parts = [render(tree[2][0])]
        for op, operand in zip(tree[1], tree[2][1:], strict=True):
            parts += [op, render(operand)]
        return "(" + " ".join(parts) + ")"
    return "(" + f" {tag} ".join(render(v) for v in tree[1]) + ")"


def reference(tree: tuple, env: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Evaluate the tree directly (not its text) with plain NumPy; x / 0 = 0."""
    tag = tree[0]
    if tag == "num":
        return np.full(n, float(tree[1]))
    if tag == "col":
        return env[tree[1]].astype(np.float64)
    if tag == "lit":
        return np.full(n, tree[1])
    if tag == "bin":
        left, right = reference(tree[2], env, n), reference(tree[3], env, n)
        if tree[1] == "/":
            return np.where(right != 0, left / np.where(right != 0, right, 1.0), 0.0)
        return {"+": left + right, "-": left - right, "*": left * right}[tree[1]]
    if tag == "neg":
        return -reference(tree[1], env, n)
    if tag == "not":
        return ~reference(tree[1], env, n)
    if tag == "if":
        return np.where(reference(tree[1], env, n), reference(tree[2], env, n), reference(tree[3], env, n))
    if tag == "cmp":
        values = [reference(t, env, n) for t in tree[2]]
        tests = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                 "==": np.equal, "!=": np.not_equal}
        out = np.ones(n, bool)
        for op, left, right in zip(tree[1], values, values[1:], strict=False):
            out &= tests[op](left, right)
        return out
    values = np.array([reference(v, env, n) for v in tree[1]])
    return values.all(axis=0) if tag == "and" else values.any(axis=0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tree=st.one_of(numbers(3), bools(3)), data=st.data())
def test_compiled_trees_match_reference_evaluator(tree, data):
    """Random trees of numbers, columns, + - * /, comparisons, and/or/not and if-else compile and give
    what a direct NumPy evaluation of the same tree gives."""
    text = render(tree)
    assume(len(text) <= MAX_CHARS)
    assume(sum(isinstance(n, ast.expr) for n in ast.walk(ast.parse(text, mode="eval"))) <= MAX_NODES)
    n = data.draw(st.integers(1, 8), label="n")
    values = st.lists(st.integers(-4, 4), min_size=n, max_size=n)
    env = {c: np.array(data.draw(values, label=c), dtype=np.int64) for c in NUMBER_COLUMNS}
    cond = compile_condition(text, TREE_COLUMNS, {}, expect="any")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cond(env, call)
    want = reference(tree, env, n)
    assert got.shape == (n,)
    if want.dtype == bool:
        assert cond.returns == "bool" and got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)
    else:
        assert cond.returns == "number" and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --- property: hostile and arbitrary text -----------------------------------------------------------------

SENTINEL = Path(tempfile.gettempdir()) / f"panopticon-condition-sentinel-{os.getpid()}"
HOSTILE = [
    '__import__("os").system("x")', f'__import__("os").system("touch {SENTINEL}")', "().__class__.__bases__",
    '().__class__.__bases__[0].__subclasses__()', f'open("{SENTINEL}", "w")', 'open("f","w")', 'eval("1")',
    'exec("import os")', "exec", "lambda: 0", "[x for x in y]", "score.__class__", '"a"*10**9', "9**9**9",
    "globals()", 'f"{score}"', "(x:=1)", "score[0]", "breakpoint()", "score.tofile('x')", "np.save",
    'getattr(score, "__class__")', "__builtins__", '__import__("subprocess")', "{**x}", "*score",
]
PREFIXES = ["", "score < 600 and ", "min(", "rank + ", "not ", "(", 'listed("redlist") or ', "1 if ", "  "]
SUFFIXES = ["", ")", " + 1", " and rank > 3", " or true", "\n", " else 0", ", 1)"]


def assert_refused_without_running(text: str) -> None:
    """Compiling ``text`` raises ConditionError, and eval, exec, compilation to code, open, os.system and
    imports of os/subprocess never happen; no sentinel file appears."""
    ran = []
    real_compile, real_import = builtins.compile, builtins.__import__

    def spy_compile(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            ran.append(("compile", source))
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def spy_import(name, *args, **kwargs):
        if name.split(".")[0] in ("os", "subprocess", "shutil", "pty"):
            ran.append(("import", name))
        return real_import(name, *args, **kwargs)

    with (mock.patch.object(builtins, "eval", lambda *a, **k: ran.append(("eval", a))),
          mock.patch.object(builtins, "exec", lambda *a, **k: ran.append(("exec", a))),
          mock.patch.object(builtins, "open", lambda *a, **k: ran.append(("open", a))),
          mock.patch.object(builtins, "compile", spy_compile),
          mock.patch.object(builtins, "__import__", spy_import),
          mock.patch.object(os, "system", lambda *a, **k: ran.append(("system", a)))):
        try:
            cond = compile_condition(text, COLUMNS, FUNCTIONS, NAMES, expect="any")
        except ConditionError:
            refused = True
        else:  # a failure; running it must still execute nothing
            refused = False
            cond(POPULATION, call)
    assert refused, f"{text!r} compiled"
    assert ran == []
    assert not SENTINEL.exists()


@pytest.mark.parametrize("fragment", HOSTILE)
def test_each_hostile_fragment_is_refused(fragment):
    """Every dangerous fragment on its own is refused without running anything."""
    assert_refused_without_running(fragment)


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), fragment=st.sampled_from(HOSTILE), suffix=st.sampled_from(SUFFIXES))
def test_hostile_strings_are_refused_and_never_run(prefix, fragment, suffix):
    """Dangerous fragments inside valid-looking text raise ConditionError and run nothing."""
    assert_refused_without_running(prefix + fragment + suffix)


def any_call(fname: str, args: tuple) -> np.ndarray:
    """A call hook for any declared function on a population of 4."""
    return np.array([True, False, True, False]) if FUNCTIONS[fname].returns == "bool" else np.arange(4.0)


def check_compiles_or_refuses(text: str) -> None:
    """Compiling gives a Condition whose result is a fresh (4,) array, or a ConditionError; nothing else."""
    try:
        cond = compile_condition(text, COLUMNS, FUNCTIONS, NAMES, expect="any")
    except ConditionError as error:
        assert isinstance(error.column, int) and 0 <= error.column <= len(text) + 1
        return
    population = {name: np.arange(4) % 2 for name in COLUMNS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cond(population, any_call)
    assert out.shape == (4,) and out.dtype == (np.bool_ if cond.returns == "bool" else np.float64)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_compiles_or_raises_condition_error(text):
    """Any text either compiles (and evaluates) or raises ConditionError, never another exception."""
    check_compiles_or_refuses(text)


TOKENS = ["score", "rank", "region", "occupation", '"urban"', '"worker"', "(", ")", ",", "and", "or", "not",
          "+", "-", "*", "/", "<", "==", "!=", ">=", "in", "if", "else", "1", "0", "2.5", "true", "listed",
          '"redlist"', "min", "clip", "abs", "days_since", '"drunk_driving"', ".", "[", "]", "**", "lambda",
          ":", "is", "count", "30", "x", "=", "'"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_token_soup_compiles_or_raises_condition_error(text):
    """Near-valid sequences of the language's tokens either compile and evaluate or raise ConditionError."""
    check_compiles_or_refuses(text)
