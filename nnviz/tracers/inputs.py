"""Example inputs for data tracing: the `-i` mini-language, parsed without torch or `eval`.

`parse_inputs(text)` turns an `-i` string into an `InputSpec`, a torch-free description of the
arguments to call the model with; tensors are only created by `InputSpec.materialise()`.

The forms (each may carry a dtype suffix such as `:int64`):

- `default`                 — one image batch, `torch.randn(1, 3, 224, 224)`;
- `image<side>`             — `torch.randn(1, 3, side, side)` (`image64`);
- `image<h>x<w>`            — `torch.randn(1, 3, h, w)` (`image64x96`);
- `tensor<d1>x<d2>...`      — `torch.randn(d1, d2, ...)` (`tensor2x16`);
- `tensorBx3x224x224`       — a size named by an upper-case name (`B`, `SEQ`, `H_2`) is
                              symbolic: `--tracer export` traces it as a `torch.export.Dim` and
                              records shapes with the name (`[B, 3, 224, 224]`, `[B*196, 768]`);
                              the example tensor has size 2 there, or the size given with `=`
                              (`tensorB=8x3x224x224`); sizes 0 and 1, which torch.export would
                              fix, are traced as 2. One name is one size wherever it appears;
- `tensor1x16:int64`        — an integer tensor (token ids), filled with zeros so that every
                              value is a valid index; `:bool` tensors are filled with `True`;
- `key:value;key:value`     — inputs by argument name (`x:image32;mask:tensor1x32:bool`), where
                              a value may also be a Python literal (`return_loss:False`);
  a bare value (no key) binds to the model's first positional argument, whatever its name;
  a key is always a key (`image1:tensor3` is the argument `image1`);
- a Python expression       — literals, lists, tuples, dicts and `torch.<constructor>(...)` calls
  (`randn rand zeros ones randint full arange empty tensor`) with keyword arguments such as
  `dtype=torch.long`; nothing else (no names, attributes or builtins). A top-level dict binds
  by argument name, a top-level tuple binds positionally, anything else is the first argument:
  `{"x": torch.randn(1, 3, 64, 64), "ids": torch.randint(0, 100, (1, 8))}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnviz.errors import InputSpecError
from nnviz.tracers.expression import DTYPES, DType, TorchCall, parse_expression

DEFAULT_SHAPE = (1, 3, 224, 224)
MAX_TEXT = 10_000

_INTEGER = frozenset({"int64", "int32", "int16", "int8", "uint8"})
_DIM = r"(?:\d+|[A-Z][A-Z0-9_]*(?:=\d+)?)"
_PRESET = re.compile(
    r"(?P<form>default|image(?P<side>\d+)(?:x(?P<width>\d+))?|"
    rf"tensor(?P<dims>{_DIM}(?:x{_DIM})*))"
    r"(?::(?P<dtype>[a-z0-9]+))?"
)
SYMBOLIC_EXAMPLE = 2
"""The example size of a named dimension given without one (and of one given as 0 or 1)."""
_EXPRESSION_START = ("{", "(", "[", "torch.")
_MAX_DIM = 1 << 31


@dataclass(frozen=True)
class SymDim:
    """A named, symbolic size (`B` in `tensorBx3x224x224`) and the example size to trace with."""

    name: str
    example: int = SYMBOLIC_EXAMPLE


@dataclass(frozen=True)
class InputSpec:
    """Inputs to call a model with: values bound positionally and by argument name.

    Values are trees of plain Python data, `TorchCall` and `DType` (from text) or live objects (when
    given as Python objects); `materialise()` turns them into tensors.
    """

    positional: tuple[Any, ...] = ()
    named: tuple[tuple[str, Any], ...] = ()
    text: str | None = None
    """The `-i` text this was parsed from, if any."""

    def materialise(self, device: Any = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Build the arguments as torch objects on `device` (default: torch's default device).

        Live tensors given as Python objects are moved to `device` when one is given.
        """
        import torch

        def build(value: Any) -> Any:
            return _materialise(value, device)

        if device is None:
            return tuple(map(build, self.positional)), {k: build(v) for k, v in self.named}
        with torch.device(device):
            return tuple(map(build, self.positional)), {k: build(v) for k, v in self.named}

    def dims(self, forward: Callable[..., Any]) -> dict[str, dict[int, str]]:
        """The named sizes of each top-level tensor argument, by forward argument name and
        dimension: `{"x": {0: "B"}}` for `-i tensorBx3x224x224`."""
        import inspect

        out: dict[str, dict[int, str]] = {}
        params = [
            name
            for name, p in inspect.signature(forward).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        given = list(zip(params, self.positional, strict=False)) + list(self.named)
        for name, value in given:
            if isinstance(value, TorchCall) and value.args and isinstance(value.args[0], tuple):
                named = {i: d.name for i, d in enumerate(value.args[0]) if isinstance(d, SymDim)}
                if named:
                    out[name] = named
        return out

    @property
    def symbolic(self) -> bool:
        """Whether any size is named (only `torch.export` can trace it so)."""
        values = [*self.positional, *(v for _, v in self.named)]
        return any(
            isinstance(v, TorchCall) and any(isinstance(a, SymDim) for a in v.args[0])
            for v in values
            if isinstance(v, TorchCall) and v.args and isinstance(v.args[0], tuple)
        )

    def bind(self, forward: Callable[..., Any], device: Any = None) -> dict[str, Any]:
        """Materialise and bind to `forward`'s parameters; return them by name, in signature
        order, defaults filled in. A key that names no argument, or a missing required argument,
        raises `InputSpecError`."""
        import inspect

        args, kwargs = self.materialise(device)
        try:
            signature = inspect.signature(forward)
        except (TypeError, ValueError):
            raise InputSpecError("-i: the model's forward() has no readable signature") from None
        names = ", ".join(signature.parameters) or "none"
        for key in kwargs:
            if key not in signature.parameters and not any(
                p.kind is p.VAR_KEYWORD for p in signature.parameters.values()
            ):
                raise InputSpecError(
                    f"-i: forward() has no argument {key!r} (its arguments: {names})"
                )
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InputSpecError(f"-i: {exc} (forward's arguments: {names})") from None
        bound.apply_defaults()
        return dict(bound.arguments)


def parse_inputs(text: str) -> InputSpec:
    """Parse an `-i` string (see the module docstring); raise `InputSpecError` if malformed."""
    source = text.strip()
    if not source:
        raise InputSpecError("-i: empty input; try -i default or -i image64 or -i tensor1x16:int64")
    if len(source) > MAX_TEXT:
        raise InputSpecError(f"-i: input text longer than {MAX_TEXT} characters")
    _refuse_bare_shape(source)
    if source.startswith(_EXPRESSION_START):
        return _bind_expression(parse_expression(source), text)
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for item in (part.strip() for part in source.split(";")):
        if not item:
            continue
        preset = _preset(item)
        if preset is not None:
            positional.append(preset)
            continue
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if _PRESET.fullmatch(key) and value.isalnum() and _preset(value) is None:
            _dtype(value, item)  # `tensor2:int65`: a misspelt dtype, not a key named tensor2
        if not sep:
            raise InputSpecError(
                f"-i: {item!r} is not an input form (default, image<side>, image<h>x<w>, "
                f"tensor<d1>x<d2>..., key:value, or a torch expression)"
            )
        if not key.isidentifier():
            raise InputSpecError(f"-i: {key!r} is not an argument name")
        if key in named:
            raise InputSpecError(f"-i: argument {key!r} given twice")
        named[key] = _value(value)
    if len(positional) > 1:
        raise InputSpecError("-i: only one input may be given without a key; name the others")
    if not positional and not named:
        raise InputSpecError("-i: no input given")
    return InputSpec(tuple(positional), tuple(named.items()), text)


_BARE_SHAPE = re.compile(
    r"[(\[]?\s*(?P<dims>\d+(?:\s*[,x×*]\s*\d+)+)\s*,?\s*[)\]]?(?::(?P<dtype>[a-z0-9]+))?"
)


def _refuse_bare_shape(source: str) -> None:
    """`(1,3,224,224)`, `[1, 16]` or `1x3x224x224` is a shape without its `tensor` prefix: say
    what was meant instead of binding four ints as four arguments."""
    match = _BARE_SHAPE.fullmatch(source)
    if match is None:
        return
    dims = "x".join(re.split(r"\s*[,x×*]\s*", match["dims"]))
    dtype = f":{match['dtype']}" if match["dtype"] else ""
    raise InputSpecError(
        f"-i: {source!r} looks like a shape; did you mean -i tensor{dims}{dtype}? "
        f"(integer arguments are given by name: -i 'n:3;k:5')"
    )


def from_object(value: Any) -> InputSpec:
    """Inputs given as Python objects: a dict binds by name, a tuple positionally, anything else
    (a tensor, a list) is the first argument."""
    if isinstance(value, InputSpec):
        return value
    if isinstance(value, str):
        return parse_inputs(value)
    return _bind_expression(value, None)


def _bind_expression(value: Any, text: str | None) -> InputSpec:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not key.isidentifier():
                raise InputSpecError(f"-i: dict key {key!r} is not an argument name")
        return InputSpec((), tuple(value.items()), text)
    if isinstance(value, tuple):
        return InputSpec(value, (), text)
    return InputSpec((value,), (), text)


def _value(text: str) -> Any:
    preset = _preset(text)
    if preset is not None:
        return preset
    if text.startswith(_EXPRESSION_START):
        return parse_expression(text)
    try:  # a plain literal for a non-tensor argument: `flag:True`, `steps:3`, `mode:'fast'`
        return parse_expression(text)
    except InputSpecError:
        pass
    raise InputSpecError(
        f"-i: {text!r} is not an input value (default, image<side>, image<h>x<w>, "
        f"tensor<d1>x<d2>..., optionally with :dtype, a Python literal, or a torch expression)"
    )


def _preset(text: str) -> TorchCall | None:
    match = _PRESET.fullmatch(text)
    if match is None or (match["dtype"] and match["dtype"] not in DTYPES):
        return None  # `image1:tensor3` is the argument image1, not an image with a dtype
    if match["form"] == "default":
        shape: tuple[int, ...] = DEFAULT_SHAPE
    elif match["side"] is not None:
        height = int(match["side"])
        shape = (1, 3, height, int(match["width"]) if match["width"] else height)
    else:
        shape = tuple(_dim(d) for d in match["dims"].split("x"))
    names = [d.name for d in shape if isinstance(d, SymDim)]
    if len(set(names)) < len(names):
        raise InputSpecError(f"-i: {text!r}: a size name may appear once in a tensor")
    for dim in shape:
        if (dim.example if isinstance(dim, SymDim) else dim) > _MAX_DIM:
            raise InputSpecError(f"-i: {text!r}: dimension {dim} is too large")
    dtype = _dtype(match["dtype"], text) if match["dtype"] else "float32"
    if dtype in _INTEGER:
        return TorchCall("zeros", (shape,), (("dtype", DType(dtype)),))
    if dtype == "bool":
        return TorchCall("ones", (shape,), (("dtype", DType(dtype)),))
    return TorchCall("randn", (shape,), (("dtype", DType(dtype)),))


def _dim(text: str) -> Any:
    if text.isdecimal():
        return int(text)
    name, _, example = text.partition("=")
    size = int(example) if example else SYMBOLIC_EXAMPLE
    return SymDim(name, size if size > 1 else SYMBOLIC_EXAMPLE)


def _dtype(name: str, where: str) -> str:
    if name not in DTYPES:
        raise InputSpecError(
            f"-i: {where!r}: unknown dtype {name!r} (use one of {', '.join(sorted(DTYPES))})"
        )
    return DTYPES[name]


# --- materialising (imports torch) -------------------------------------------------------------


def _materialise(value: Any, device: Any) -> Any:
    import torch

    if isinstance(value, TorchCall):
        args = tuple(_materialise(a, device) for a in value.args)
        kwargs = {k: _materialise(v, device) for k, v in value.kwargs}
        try:
            return getattr(torch, value.function)(*args, **kwargs)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputSpecError(f"-i: torch.{value.function}(...) failed: {first[:160]}") from None
    if isinstance(value, DType):
        return getattr(torch, value.name)
    if isinstance(value, SymDim):
        return value.example
    if isinstance(value, tuple):
        return tuple(_materialise(v, device) for v in value)
    if isinstance(value, list):
        return [_materialise(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _materialise(v, device) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and device is not None:
        return value.to(device)
    return value
