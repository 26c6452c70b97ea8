"""No float anywhere in billing: money is Decimal from the database to the PDF."""

from __future__ import annotations

import ast
from pathlib import Path

import graam_pbx.billing

BILLING = Path(graam_pbx.billing.__file__).parent


def _both_ints(node: ast.BinOp) -> bool:
    return all(
        isinstance(side, ast.Constant) and type(side.value) is int
        for side in (node.left, node.right)
    )


def _names(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def floats_in(source: str, name: str) -> list[str]:
    """Each float literal, ``float(...)`` call and ``int / int`` of ``source``, by line."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"{name}:{node.lineno}: float literal {node.value!r}")
        if isinstance(node, ast.Call) and _names(node.func, "float"):
            found.append(f"{name}:{node.lineno}: float() call")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and _both_ints(node):
            found.append(f"{name}:{node.lineno}: int / int makes a float")
    return found


def test_the_checker_finds_each_kind() -> None:
    source = "a = 0.5\nb = float('1')\nc = 1 / 2\nd = Decimal(1) / 2\ne = 1 // 2\n"
    assert floats_in(source, "x.py") == [
        "x.py:1: float literal 0.5",
        "x.py:2: float() call",
        "x.py:3: int / int makes a float",
    ]


def test_no_float_in_billing() -> None:
    modules = sorted(BILLING.rglob("*.py"))
    assert modules, BILLING
    found = [
        hit
        for module in modules
        for hit in floats_in(module.read_text(), str(module.relative_to(BILLING.parent.parent)))
    ]
    assert not found, "\n".join(found)
