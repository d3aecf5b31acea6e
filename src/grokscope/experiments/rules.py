"""Verdict rules: small boolean expressions over a reproduction's stored numbers.

A rule is data (a string in the catalogue entry), evaluated here with a whitelist of Python's
expression syntax: comparisons, ``and``/``or``/``not``, arithmetic, attribute access on runs
(``wd2.generalization_step``), calls of a few numeric functions, and numbers. Every value the
rule reads is recorded, so the verdict file shows the numbers behind "holds / does not hold".

>>> evaluate_rule("a < b and max(a, b) == 3", {"a": 1, "b": 3})
(True, {'a': 1, 'b': 3})
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grokscope.errors import ConfigError

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "all": all,
    "any": any,
    "len": len,
    "sum": sum,
    "mean": lambda values: float(np.mean(values)),
    "median": lambda values: float(np.median(values)),
    "log10": math.log10,
    "isfinite": math.isfinite,
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def evaluate_rule(rule: str, names: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Evaluate ``rule`` with ``names`` bound; returns (holds, {expression: value read})."""
    try:
        tree = ast.parse(rule, mode="eval")
    except SyntaxError as error:
        raise ConfigError(f"rule {rule!r}: not a valid expression ({error.msg})") from None
    read: dict[str, Any] = {}
    value = _Evaluator(names, read).visit(tree.body)
    return bool(value), read


class _Evaluator(ast.NodeVisitor):
    def __init__(self, names: Mapping[str, Any], read: dict[str, Any]) -> None:
        self.names = names
        self.read = read

    def generic_visit(self, node: ast.AST) -> Any:
        raise ConfigError(f"rule: '{ast.unparse(node)}' is not allowed in a verdict rule")

    def _record(self, node: ast.AST, value: Any) -> Any:
        if isinstance(value, (int, float, str, bool, np.number)) or value is None:
            self.read[ast.unparse(node)] = value.item() if isinstance(value, np.number) else value
        return value

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self._record(node, self.names[node.id])
        if node.id in FUNCTIONS:
            return FUNCTIONS[node.id]
        if node.id in ("inf", "nan"):
            return float(node.id)
        raise ConfigError(f"rule: unknown name '{node.id}'; known: {', '.join(sorted(self.names))}")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise ConfigError(f"rule: attribute '{node.attr}' is not allowed")
        return self._record(node, getattr(self.visit(node.value), node.attr))

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        return self._record(node, self.visit(node.value)[self.visit(node.slice)])

    def visit_Call(self, node: ast.Call) -> Any:
        function = self.visit(node.func)
        if not callable(function) or node.keywords:
            raise ConfigError(f"rule: '{ast.unparse(node)}' is not an allowed call")
        return self._record(node, function(*[self.visit(arg) for arg in node.args]))

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(element) for element in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(element) for element in node.elts)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        if type(node.op) not in _BINARY:
            return self.generic_visit(node)
        return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.visit(value) for value in node.values]  # all recorded, no short-circuit
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        result = True
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            if type(op) not in _COMPARE:
                return self.generic_visit(node)
            result = result and _COMPARE[type(op)](left, right)
            left = right
        return result

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
