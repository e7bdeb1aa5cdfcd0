"""Values carried by a graph: JSON data with a few tagged forms, and how to show them.

Everything a model passes as a constant argument or configures as a hyperparameter is stored in a
JSON-compatible form so that a snapshot round-trips exactly and loads without torch:

- `None`, `bool`, `int`, `str` and lists are themselves; finite floats are themselves.
- Other things are a one-key dict whose key starts with `$`:
  `{"$tuple": [...]}`, `{"$slice": [start, stop, step]}`, `{"$ellipsis": null}`,
  `{"$float": "nan" | "inf" | "-inf"}`, `{"$dtype": "float32"}`, `{"$device": "cpu"}`,
  `{"$enum": "Color.RED"}`, `{"$dict": [[key, value], ...]}` (dicts keep their key order),
  `{"$attr": "layer1.0.bn1.running_mean"}` (a read of a module's parameter or buffer),
  `{"$repr": "text"}` (anything else, shown as text and compared as text).

Tensor specs (what flows on an edge) are values too:
  `{"$tensor": {"shape": [1, 3, 224, 224], "dtype": "float32"}}`; lists, tuples and dicts of specs
  use the forms above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Value = Any
"""A JSON-compatible value in the tagged form described in this module's docstring."""

TAGS = frozenset(
    {
        "$tuple",
        "$slice",
        "$ellipsis",
        "$float",
        "$dtype",
        "$device",
        "$enum",
        "$dict",
        "$attr",
        "$repr",
        "$tensor",
    }
)


def format_value(value: Value) -> str:
    """Return `value` as Python-like text: `(3, 3)`, `slice(None, 2, None)`, `torch.float32`."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$tuple":
            items = [format_value(v) for v in inner]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if tag == "$slice":
            return "slice(" + ", ".join(format_value(v) for v in inner) + ")"
        if tag == "$ellipsis":
            return "..."
        if tag == "$float":
            return f"float('{inner}')"
        if tag == "$dtype":
            return f"torch.{inner}"
        if tag == "$device":
            return f"device('{inner}')"
        if tag in ("$enum", "$repr", "$attr"):
            return str(inner)
        if tag == "$dict":
            return "{" + ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in inner) + "}"
        if tag == "$tensor":
            return format_tensor(inner)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def format_tensor(spec: dict[str, Any]) -> str:
    """Show a tensor spec as `[1, 512]` (float32 is implied) or `[1, 16] int64`."""
    shape = "[" + ", ".join(str(d) for d in spec.get("shape", [])) + "]"
    dtype = spec.get("dtype", "float32")
    return shape if dtype == "float32" else f"{shape} {dtype}"


def float_value(x: float) -> Value:
    """Encode a float, tagging the values JSON cannot hold."""
    if math.isnan(x):
        return {"$float": "nan"}
    if math.isinf(x):
        return {"$float": "inf" if x > 0 else "-inf"}
    return x


def is_tensor_spec(value: Value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "$tensor" in value


@dataclass(frozen=True)
class TensorSpec:
    """A tensor that flows on an edge; `str()` shows it as `[1, 512]` (or `[1, 16] int64`)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        return format_tensor({"shape": list(self.shape), "dtype": self.dtype})


def typed_spec(value: Value) -> Any:
    """A stored spec as Python values: `TensorSpec` for a tensor, tuples, lists and dicts of
    specs as such, plain values as they are, other tagged values left tagged."""
    if isinstance(value, list):
        return [typed_spec(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$tensor":
            return TensorSpec(tuple(inner.get("shape", ())), inner.get("dtype", "float32"))
        if tag == "$tuple":
            return tuple(typed_spec(v) for v in inner)
        if tag == "$dict":
            return {typed_spec(k): typed_spec(v) for k, v in inner}
        if tag == "$float":
            return float(inner)
        if tag in TAGS:
            return value
    if isinstance(value, dict):
        return {k: typed_spec(v) for k, v in value.items()}
    return value
