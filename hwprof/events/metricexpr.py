"""The vendors' metric expression language, parsed once and evaluated over counted values.

Two spellings reach here, both Python-like infix expressions:
- perf's MetricExpr (AMD JSON): `d_ratio(ex_ret_brn_misp, ex_ret_brn)`, `6 * ls_not_halted_cyc`,
  `cpu@de_no_dispatch_per_slot.no_ops_from_frontend\\,cmask\\=0x6@` (an event with PMU terms), `#smt_on`;
- Intel perfmon formulas after hwprof.events.vendor replaced their aliases: `'EVENT:c1'` (quoted event
  references with perfmon's modifiers), `a if #smt_on else b`, `min(x, y)`, `max(...)`, thresholds with `&`/`|`.

Names are made into string constants before parsing, so `ex_ret_ops`, `de_src_op_disp.all` or
`EXE_ACTIVITY.1_PORTS_UTIL` need no Python identifier rules; Python's `ast` then gives the tree, and only the
node kinds below are accepted (nothing is ever `eval`ed). A name resolves through a callback to an event count,
another metric or a constant (`#smt_on`, `#system_tsc_freq`, ...).

Arithmetic follows perf's expr.y: `x / 0` is NaN (the metric is then not shown), `d_ratio(x, 0)` is 0,
comparisons and `&`/`|` yield 1 or 0, `a if c else b` evaluates only the branch taken.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

FUNCTIONS = ("min", "max", "d_ratio", "abs")
_KEYWORDS = {"if", "else", "and", "or", "not", *FUNCTIONS}
# `cpu@event\,term\=value@` -> an event with terms (perf's spelling inside metric expressions)
_PMU_AT = re.compile(r"([A-Za-z_][\w]*)@((?:[^@\\]|\\.)*)@")
# a bare name (not part of a number like 1e9 or 0x1f, not inside quotes: quotes are handled by the splitter)
_NAME = re.compile(r"(?<![\w.#])#?\w[\w.]*")


class MetricExprError(ValueError):
    pass


def _quote_names(text: str) -> str:
    out = []
    # keep quoted parts as they are; only rewrite outside quotes
    for i, part in enumerate(re.split(r"('[^']*')", text)):
        if i % 2:
            out.append(part)
            continue
        part = _PMU_AT.sub(lambda m: repr(f"{m.group(1)}/{m.group(2).replace(chr(92), '')}/"), part)
        pieces = re.split(r"('[^']*')", part)
        for j, piece in enumerate(pieces):
            if j % 2:
                out.append(piece)
                continue
            out.append(_NAME.sub(_quote_name, piece))
    return "".join(out)


def _quote_name(match: re.Match) -> str:
    token = match.group(0)
    if token in _KEYWORDS:
        return token
    try:
        float(token) if not token.lower().startswith("0x") else int(token, 16)
        return token  # a number (1e9, 0.0001, 0x1f)
    except ValueError:
        return repr(token)  # a name, even one starting with a digit (4K_Aliasing)


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_COMPARE = {ast.Lt: operator.lt, ast.Gt: operator.gt, ast.LtE: operator.le, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


@dataclass(frozen=True)
class MetricExpr:
    text: str
    tree: ast.expr = field(repr=False, compare=False)

    def names(self, constants: dict[str, float] | None = None) -> set[str]:
        """Every event, metric and constant name the expression refers to. With `constants`, a conditional
        whose test depends on constants alone (`a / 2 if #smt_on else b`) contributes only the branch taken:
        the events of the other branch need not be counted."""
        out: set[str] = set()

        def walk(node: ast.AST) -> None:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.add(node.value)
                return
            if constants is not None and isinstance(node, ast.IfExp):
                test_names = MetricExpr("", node.test).names()
                if test_names and all(n in constants for n in test_names):
                    walk(node.test)
                    walk(node.body if _eval(node.test, constants.__getitem__) else node.orelse)
                    return
            for child in ast.iter_child_nodes(node):
                walk(child)

        walk(self.tree)
        return out

    def evaluate(self, resolve: Callable[[str], float]) -> float:
        return _eval(self.tree, resolve)


def parse_expr(text: str) -> MetricExpr:
    try:
        tree = ast.parse(_quote_names(text.strip()), mode="eval").body
    except SyntaxError as exc:
        raise MetricExprError(f"cannot parse metric expression {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        _check(node, text)
    return MetricExpr(text, tree)


_ALLOWED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Constant, ast.Name, ast.Load,
            ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


def _check(node: ast.AST, text: str) -> None:
    if not isinstance(node, _ALLOWED):
        raise MetricExprError(f"unsupported construct {type(node).__name__} in metric expression {text!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise MetricExprError(f"unknown function in metric expression {text!r}")
    if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
        raise MetricExprError(f"unexpected name {node.id!r} in metric expression {text!r}")
    if isinstance(node, ast.BinOp) and not isinstance(node.op, (*_BINARY, ast.Div, ast.BitAnd, ast.BitOr)):
        raise MetricExprError(f"unsupported operator in metric expression {text!r}")


def _eval(node: ast.expr, resolve: Callable[[str], float]) -> float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return float(resolve(node.value))
        return float(node.value)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, resolve), _eval(node.right, resolve)
        if isinstance(node.op, ast.Div):
            return left / right if right != 0 else math.nan
        if isinstance(node.op, ast.BitAnd):
            return float(bool(left) and bool(right))
        if isinstance(node.op, ast.BitOr):
            return float(bool(left) or bool(right))
        return float(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, resolve)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.Not):
            return float(not value)
        return value
    if isinstance(node, ast.BoolOp):
        values = [bool(_eval(v, resolve)) for v in node.values]
        return float(all(values) if isinstance(node.op, ast.And) else any(values))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, resolve)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, resolve)
            if not _COMPARE[type(op)](left, right):
                return 0.0
            left = right
        return 1.0
    if isinstance(node, ast.IfExp):
        return _eval(node.body, resolve) if _eval(node.test, resolve) else _eval(node.orelse, resolve)
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        args = [_eval(a, resolve) for a in node.args]
        if name == "d_ratio":
            return 0.0 if args[1] == 0 else args[0] / args[1]
        if name == "abs":
            return abs(args[0])
        return float(min(args) if name == "min" else max(args))
    raise MetricExprError(f"cannot evaluate {ast.dump(node)}")
