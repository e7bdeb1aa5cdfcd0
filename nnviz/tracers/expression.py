"""The `-i` expression form, parsed without torch or `eval`: literals, tuples, lists, dicts and
`torch.<constructor>(...)` calls with `torch.<dtype>` values become plain data, `TorchCall` and
`DType` values (`parse_expression`); anything else is refused in one line naming it.
`nnviz.tracers.inputs` builds its presets from the same values and materialises them.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnviz.errors import InputSpecError

CONSTRUCTORS = frozenset(
    {"randn", "rand", "zeros", "ones", "randint", "full", "arange", "empty", "tensor"}
)
"""The `torch.<name>(...)` calls the expression form may use."""

KEYWORDS = frozenset(
    {"dtype", "size", "low", "high", "fill_value", "start", "end", "step", "data", "requires_grad"}
)
"""Keyword arguments those calls may take (never `device`, `out` or `generator`)."""

DTYPES: Mapping[str, str] = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "complex64": "complex64",
}
"""dtype names accepted after `:` and as `torch.<name>`, mapped to their canonical name."""


@dataclass(frozen=True)
class DType:
    """`torch.<name>`, by canonical name (`int64`)."""

    name: str


@dataclass(frozen=True)
class TorchCall:
    """A `torch.<function>(*args, **kwargs)` call, built when materialised."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


def parse_expression(text: str) -> Any:
    """Parse a restricted Python expression into plain data, `TorchCall` and `DType` values.

    Only literals, unary minus, tuples, lists, dicts and `torch.<constructor>(...)` calls with
    `torch.<dtype>` values are accepted; the text is never executed.
    """
    try:
        with warnings.catch_warnings():  # `(1abc)` would print a SyntaxWarning line
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise InputSpecError(f"-i: {text[:60]!r} is not a valid expression ({reason})") from None
    try:
        return _convert(tree.body)
    except RecursionError:
        raise InputSpecError("-i: expression nested too deeply") from None


def _convert(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, (bool, int, float, str))
    ):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.Tuple):
        return tuple(_convert(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_convert(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise _refuse(node, "`**` unpacking")
            converted = _convert(key)
            if isinstance(converted, (TorchCall, list, dict)):
                raise _refuse(key, "a non-constant dict key")
            out[converted] = _convert(value)
        return out
    if isinstance(node, ast.Attribute):
        name = _torch_attribute(node)
        if name in DTYPES:
            return DType(DTYPES[name])
        raise _refuse(node, f"torch.{name} (only torch dtypes may be named)")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Attribute):
            raise _refuse(node, "a call of anything but torch.<constructor>")
        function = _torch_attribute(node.func)
        if function not in CONSTRUCTORS:
            raise _refuse(node, f"torch.{function} (allowed: {', '.join(sorted(CONSTRUCTORS))})")
        kwargs: list[tuple[str, Any]] = []
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in KEYWORDS:
                raise _refuse(
                    node,
                    f"keyword {keyword.arg or '**'!r} (allowed: {', '.join(sorted(KEYWORDS))})",
                )
            kwargs.append((keyword.arg, _convert(keyword.value)))
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _refuse(arg, "`*` unpacking")
        return TorchCall(function, tuple(_convert(arg) for arg in node.args), tuple(kwargs))
    raise _refuse(node, f"{type(node).__name__.lower()} `{_source(node)}`")


def _torch_attribute(node: ast.Attribute) -> str:
    if isinstance(node.value, ast.Name) and node.value.id == "torch":
        return node.attr
    raise _refuse(node, f"`{_source(node)}` (only torch.<name> may be used)")


def _source(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # unparse of a malformed tree; the node type is enough then
        return type(node).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse(node: ast.AST, what: str) -> InputSpecError:
    return InputSpecError(f"-i: not allowed in an input expression: {what}")
