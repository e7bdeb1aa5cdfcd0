"""Never a CPU copy that cannot fit: what a fallback from the meta device would allocate.

A model built on the meta device costs no memory. When it cannot run there (`.item()`, a
data-dependent shape), the tracers run it again on a CPU copy — which allocates every parameter
and buffer, and the inputs. Before any such copy, `check` adds those bytes up and refuses, with
one line naming the op that failed on meta and what to do, when they exceed the limit: the
memory this machine has available (`MemAvailable`), or the explicit `memory_limit` of
`nnviz.trace` / `--memory-limit` / the fixture's `memory_limit=` (which replaces it).

Torch is imported only by the functions that count tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from nnviz.errors import ModelBuildError, TraceError
from nnviz.sizes import available, human
from nnviz.sizes import parse_size as parse_size  # where the tracers' callers import it

if TYPE_CHECKING:
    from torch import nn

_LIMIT: ContextVar[int | None] = ContextVar("nnviz_memory_limit", default=None)


@contextlib.contextmanager
def limited(limit: str | int | None) -> Iterator[None]:
    """Within the block, CPU fallbacks may allocate at most `limit` bytes (None: what the
    machine has available)."""
    token = _LIMIT.set(parse_size(limit))
    try:
        yield
    finally:
        _LIMIT.reset(token)


def state_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers on a real device (shared tensors once;
    uninitialised lazy ones left out, so a lazy model's figure is a lower bound)."""
    from torch.nn.parameter import is_lazy

    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in seen and not is_lazy(tensor):  # a lazy one's size is not known yet
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def input_bytes(bound: dict[str, Any]) -> int:
    """Bytes the bound inputs take on a real device."""
    import torch

    total = 0
    for value in bound.values():
        for leaf in torch.utils._pytree.tree_leaves(value):
            if isinstance(leaf, torch.Tensor):
                total += leaf.numel() * leaf.element_size()
    return total


def _limit() -> tuple[int | None, bool]:
    explicit = _LIMIT.get()
    return (explicit, True) if explicit is not None else (available(), False)


def fits(model: nn.Module, bound: dict[str, Any]) -> bool:
    """Whether a CPU copy of `model` with `bound` inputs stays within the limit."""
    limit = _limit()[0]
    return limit is None or state_bytes(model) + input_bytes(bound) <= limit


def check(name: str, model: nn.Module, bound: dict[str, Any], failure: str) -> None:
    """Refuse (`TraceError`) a CPU copy of `model` with `bound` inputs that would not fit.

    `failure` says what failed on meta (`Tensor.item failed with NotImplementedError: ...`).
    """
    weights, inputs = state_bytes(model), input_bytes(bound)
    need = weights + inputs
    limit, explicit = _limit()
    if limit is None or need <= limit:
        return
    what = (
        f"the memory limit of {human(limit)}"
        if explicit
        else f"the {human(limit)} this machine has available"
    )
    raise TraceError(
        f"{name} cannot run on the meta device ({failure}), and running it on a CPU copy "
        f"would allocate at least {human(need)} (weights {human(weights)}, inputs "
        f"{human(inputs)}), more than {what}: make that op work on meta tensors (no .item() or "
        "data-dependent shape), trace a smaller config of the same architecture (e.g. -a "
        "num_hidden_layers=2), or allow more with --memory-limit (memory_limit= in Python)"
    )


@contextlib.contextmanager
def counted_build(name: str, failure: str) -> Iterator[None]:
    """Within the block a model's constructor runs on the CPU, its size unknown until built (the
    last resort of `nnviz.models.build`, after it failed on meta: `failure`). Every tensor a
    factory op makes (`torch.empty`, `zeros`, `randn`, `arange`: where every parameter and
    buffer is born) is first made on the meta device to learn its size; one that would take
    the bytes made so far above the limit is refused (`ModelBuildError`) before it is allocated.
    Temporaries count too (the sum never decreases): a build refused for them names the limit.
    A `TorchFunctionMode`, not a dispatch mode: any dispatch mode breaks a `torch.jit.trace` run
    inside the constructor ("Cannot insert a Tensor that requires grad as a constant")."""
    known, explicit = _limit()
    if known is None:
        yield
        return
    limit: int = known
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    def size(value: Any) -> int:
        leaves = tree_leaves(value)
        return sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))

    made = 0

    class Counted(TorchFunctionMode):  # type: ignore[misc]
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            nonlocal made
            kwargs = kwargs or {}
            if any(isinstance(x, torch.Tensor) for x in tree_leaves((args, kwargs))):
                return func(*args, **kwargs)  # made from tensors that are counted already
            try:
                need = size(func(*args, **{**kwargs, "device": torch.device("meta")}))
            except Exception:  # no device argument (or none meta takes): counted once made
                need = 0
            if made + need > limit:
                raise ModelBuildError(_refusal(name, failure, made + need, limit, explicit))
            out = func(*args, **kwargs)
            made += need or size(out)
            return out

    with Counted():
        yield


def _refusal(name: str, failure: str, need: int, limit: int, explicit: bool) -> str:
    what = (
        f"the memory limit of {human(limit)}"
        if explicit
        else f"the {human(limit)} this machine has available"
    )
    return (
        f"{name} cannot be built on the meta device ({failure}), and building it on the CPU "
        f"would allocate at least {human(need)}, more than {what}: make its constructor work on "
        "meta tensors (no .item() on a parameter or buffer), build a smaller config of the "
        "same architecture (e.g. -a num_hidden_layers=2), or allow more with --memory-limit "
        "(memory_limit= in Python)"
    )


def failed_op(error: BaseException) -> str:
    """`op: error` for an error raised while running the op the tracer tagged on it."""
    text = (str(error).strip().splitlines() or [""])[0][:160]
    said = f"{type(error).__name__}: {text}" if text else type(error).__name__
    op = getattr(error, "_nnviz_op", None)
    return f"{op} failed with {said}" if op else said


def tag(error: BaseException, op: str) -> None:
    """Remember on `error` the innermost op it was raised by (kept when it passes outer ops)."""
    if getattr(error, "_nnviz_op", None) is None:
        with contextlib.suppress(AttributeError, TypeError):
            error._nnviz_op = op  # type: ignore[attr-defined]
