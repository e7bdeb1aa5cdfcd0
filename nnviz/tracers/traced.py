"""Python values that remember which recorded call produced them, for the eager tracer.

A real forward pass hands out plain ints, floats, sizes and tuples where torch.fx hands out
proxies. To record the same graph, the eager tracer wraps the results of recorded calls: an
`int` from `x.size(0)` becomes a `TracedInt` whose arithmetic is recorded (`h // p` is an
`operator.floordiv` node), `x.shape` a `TracedSize` and a module's tuple output a `TracedTuple`,
whose indexing and unpacking are recorded as `operator.getitem` nodes, exactly where fx records
them. Outside a recording (or while it is muted, inside a leaf module) they behave as the plain
values they subclass.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Protocol


class Recording(Protocol):
    """What the wrappers need from the eager recorder."""

    muted: int
    counter: Any
    """The cost counter (`nnviz.tracers.cost.Counter`) or None."""
    pending: Any
    """What the last unrecorded run cost, for `finish` to give the call it records."""

    def mark(self, value: Any) -> Any:
        """`value` with traced values replaced by references to the calls that made them."""

    def slots(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """Marked arguments by slot (`"0"`, `"1"`, keyword names)."""

    def finish(
        self, target: Callable[..., Any] | str, slots: list[tuple[str, Any]], result: Any
    ) -> Any:
        """Record a call of `target` on marked `slots` if any is traced; return the result the
        program should see."""

    def record_op(
        self, target: Callable[..., Any] | str, operands: tuple[Any, ...], result: Any
    ) -> Any:
        """Record `target(*operands)` (a method name when `target` is a str) returning
        `result`; return what the traced program should see instead of `result`."""


_recording: list[Recording] = []
"""The active recording (at most one), set by the eager tracer for the length of a trace."""


def active() -> Recording | None:
    """The recording that should see Python-level operations now, or None."""
    if _recording and not _recording[-1].muted:
        return _recording[-1]
    return None


def plain(value: Any) -> Any:
    """`value` with every traced wrapper replaced by the plain value it stands for."""
    if isinstance(value, Traced):
        return value.plain_value()
    if type(value) in (tuple, list):
        return type(value)(plain(v) for v in value)
    if type(value) is dict:
        return {k: plain(v) for k, v in value.items()}
    if type(value) is slice:
        return slice(plain(value.start), plain(value.stop), plain(value.step))
    return value


class Traced:
    """Mixin: the recorded call (`ref`) that produced this value."""

    ref: Any

    def plain_value(self) -> Any:
        raise NotImplementedError


def _number_op(target: Callable[..., Any], base: type, reflected: bool) -> Callable[..., Any]:
    def method(self: Any, *other: Any) -> Any:
        mine = self.plain_value()
        others = tuple(plain(o) for o in other)
        result = target(*others, mine) if reflected else target(mine, *others)
        if result is NotImplemented:
            return result
        recording = active()
        if recording is None:
            return result
        operands = (*other, self) if reflected else (self, *other)
        return recording.record_op(target, operands, result)

    return method


BINARY: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "floordiv": operator.floordiv,
    "truediv": operator.truediv,
    "mod": operator.mod,
    "pow": operator.pow,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
}
UNARY: dict[str, Callable[..., Any]] = {
    "neg": operator.neg,
    "pos": operator.pos,
    "invert": operator.invert,
    "abs": operator.abs,
}
COMPARE: dict[str, Callable[..., Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _with_ops(cls: type, base: type) -> type:
    for name, target in BINARY.items():
        if hasattr(base, f"__{name}__"):
            setattr(cls, f"__{name}__", _number_op(target, base, False))
            setattr(cls, f"__r{name}__", _number_op(target, base, True))
    for name, target in {**UNARY, **COMPARE}.items():
        if hasattr(base, f"__{name}__"):
            setattr(cls, f"__{name}__", _number_op(target, base, False))
    cls.__hash__ = base.__hash__  # type: ignore[method-assign]
    return cls


class _TracedNumber(Traced):
    """A number produced by a recorded call, behaving as its `BASE` (int or float) does, with
    every arithmetic and comparison operator recorded (`_with_ops`)."""

    BASE: ClassVar[Any]  # int or float (Any: mypy cannot type a base chosen per subclass)

    def __new__(cls, value: Any, ref: Any) -> Any:
        obj = cls.BASE.__new__(cls, value)
        obj.ref = ref
        return obj

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _with_ops(cls, cls.BASE)

    def plain_value(self) -> Any:
        return self.BASE(self)

    def __repr__(self) -> str:
        return str(self.BASE.__repr__(self))


class TracedInt(_TracedNumber, int):
    """An `int` produced by a recorded call (`x.size(0)`, `h // p`)."""

    BASE = int


class TracedFloat(_TracedNumber, float):
    """A `float` produced by a recorded call (`h / 2`)."""

    BASE = float


class TracedTuple(tuple, Traced):  # type: ignore[type-arg]
    """A tuple (or `torch.Size`, or a named result like `torch.max`'s) produced by a recorded
    call; indexing, unpacking and named fields are recorded like fx records them on a proxy."""

    original: Any

    def __new__(cls, value: Any, ref: Any) -> TracedTuple:
        obj = super().__new__(cls, tuple.__iter__(value))
        obj.ref = ref
        obj.original = value
        return obj

    def plain_value(self) -> Any:
        return self.original

    def __getitem__(self, index: Any) -> Any:
        result = tuple.__getitem__(self.original, plain(index))
        if isinstance(index, slice) and type(self.original).__name__ == "Size":
            result = type(self.original)(result)
        recording = active()
        if recording is None:
            return result
        return recording.record_op(operator.getitem, (self, index), result)

    def __iter__(self) -> Iterator[Any]:
        if active() is None:
            return tuple.__iter__(self.original)
        return (self[i] for i in range(tuple.__len__(self)))

    def __getattr__(self, name: str) -> Any:
        fields = getattr(type(self.original), "_fields", None) or getattr(
            type(self.original), "n_fields", None
        )
        if name.startswith("_") or fields is None:
            raise AttributeError(name)
        result = getattr(self.original, name)
        recording = active()
        if recording is None:
            return result
        return recording.record_op(getattr, (self, name), result)

    def numel(self) -> Any:
        result = self.original.numel()
        recording = active()
        if recording is None:
            return result
        return recording.record_op("numel", (self,), result)

    def __add__(self, other: Any) -> Any:  # type: ignore[override]
        return _number_op(operator.add, tuple, False)(self, other)

    def __radd__(self, other: Any) -> Any:
        return _number_op(operator.add, tuple, True)(self, other)

    def __repr__(self) -> str:
        return repr(self.original)

    def __reduce__(self) -> Any:
        return (tuple, (tuple(self.original),))


class TracedDict(dict, Traced):  # type: ignore[type-arg]
    """A dict given as an input; item reads are recorded like fx records them on a proxy."""

    original: Any

    def __init__(self, value: dict[Any, Any], ref: Any) -> None:
        super().__init__(value)
        self.ref = ref
        self.original = value

    def plain_value(self) -> Any:
        return self.original

    def __getitem__(self, key: Any) -> Any:
        result = self.original[plain(key)]
        recording = active()
        if recording is None:
            return result
        return recording.record_op(operator.getitem, (self, key), result)


def wrap(value: Any, ref: Any) -> Any:
    """A tuple, list or dict input as a traced value produced by `ref`."""
    if type(value) is dict:
        return TracedDict(value, ref)
    if type(value) is list:
        return TracedList(value, ref)
    return TracedTuple(value, ref)


class TracedList(list, Traced):  # type: ignore[type-arg]
    """A list produced by a recorded call; indexing and unpacking are recorded."""

    original: Any

    def __init__(self, value: list[Any], ref: Any) -> None:
        super().__init__(value)
        self.ref = ref
        self.original = value

    def plain_value(self) -> Any:
        return self.original

    def __getitem__(self, index: Any) -> Any:
        result = list.__getitem__(self.original, plain(index))
        recording = active()
        if recording is None:
            return result
        return recording.record_op(operator.getitem, (self, index), result)

    def __iter__(self) -> Iterator[Any]:
        if active() is None:
            return list.__iter__(self.original)
        return (self[i] for i in range(list.__len__(self)))
