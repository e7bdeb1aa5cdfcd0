"""The conventions every tracer shares, so that all tracers give the same graph: torch objects
as graph values, op names, node ids, a model's module tree, which calls are shape queries, and
where a model lives (meta, or an uninitialised CPU copy to run on).
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import torch
import torch.fx
from torch import nn

from nnviz.errors import TraceError
from nnviz.graph import Module, parent_path
from nnviz.tracers import configs
from nnviz.values import Value, float_value

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

MODEL_DEVICE: Value = {"$device": "model"}
"""A device read from the model's tensors: the same whether nnviz ran it on meta or the CPU."""


def encode(value: Any) -> Value:
    """A torch/Python constant as a graph value (see `nnviz.values`)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return float_value(value)
    if isinstance(value, torch.Size):
        return {"$tuple": [int(d) for d in value]}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        # Set order depends on PYTHONHASHSEED; sorted text keeps snapshots byte-identical.
        items = sorted(_ADDRESS.sub("", repr(v)) for v in value)
        return {"$repr": "{" + ", ".join(items) + "}" if items else "set()"}
    if isinstance(value, slice):
        return {"$slice": [encode(value.start), encode(value.stop), encode(value.step)]}
    if value is Ellipsis:
        return {"$ellipsis": None}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        # the meta device is where nnviz ran the model (a device read from one of its tensors),
        # not a value of the model: recorded as the model's device, whatever that will be
        return MODEL_DEVICE if value.type == "meta" else {"$device": str(value)}
    if isinstance(value, enum.Enum):
        return {"$enum": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, torch.Tensor):
        return {"$repr": f"tensor{list(value.shape)}"}
    if isinstance(value, type) or inspect.isroutine(value):
        return {"$repr": qualname(value)}
    if isinstance(value, torch.fx.Proxy):
        # a symbolic value where a real one belongs: the model holds state from a symbolic trace
        raise TraceError(
            f"the model holds a torch.fx Proxy ({value}) left by an earlier symbolic trace; "
            f"refusing to record it (trace a fresh instance of the model)"
        )
    return {"$repr": _ADDRESS.sub("", repr(value))}


def spec_of(value: Any) -> Value:
    """What a runtime value looks like on an edge: tensor shape and dtype, nested containers."""
    if isinstance(value, torch.Tensor):
        return {
            "$tensor": {
                "shape": [int(d) for d in value.shape],
                "dtype": str(value.dtype).removeprefix("torch."),
            }
        }
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        items = [spec_of(v) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {"$dict": [[encode(k), spec_of(v)] for k, v in value.items()]}
    if isinstance(value, torch.device):  # read from a tensor: meta, or CPU in a fallback
        return MODEL_DEVICE
    return encode(value)


def qualname(obj: Any) -> str:
    """Public qualified name: `torch.nn.Conv2d`, `torch.flatten`, `operator.add`, `getattr`."""
    name = getattr(obj, "__name__", None) or type(obj).__name__
    for public in (torch.nn, torch, torch.nn.functional, operator):
        if getattr(public, name, None) is obj:
            return f"{public.__name__}.{name}"
    module = getattr(obj, "__module__", None) or ""
    if module == "builtins":
        return name
    if module in ("_operator",):
        return f"operator.{name}"
    return f"{module}.{getattr(obj, '__qualname__', name)}" if module else name


def _init_defaults(cls: type) -> dict[str, Any]:
    """Constructor argument names of `cls` and of every module class it derives from (a
    subclass's `__init__(self, num_features, ...)` still configures its base's
    `normalized_shape`), in MRO order, with their defaults (`inspect.Parameter.empty` if none)."""
    names: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is nn.Module or not issubclass(klass, nn.Module) or "__init__" not in vars(klass):
            continue
        try:
            signature = inspect.signature(_unwrapped(klass.__init__))
        except (TypeError, ValueError):
            continue
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                names.setdefault(name, param.default)
    return names


def _unwrapped(init: Callable[..., Any]) -> Callable[..., Any]:
    """The constructor a decorator forwards to when it hides it behind `(*args, **kwargs)`
    without `functools.wraps` (transformers 5's `use_kernelized_func` wraps an attention
    class's `__init__` so): the `__init__` function its closure holds, else `init` itself."""
    for _ in range(8):  # decorators stacked on one constructor; never a cycle
        after_self = list(inspect.signature(init).parameters.values())[1:]
        if not after_self or any(p.kind not in _FORWARDING for p in after_self):
            return init
        held = [_contents(cell) for cell in getattr(init, "__closure__", None) or ()]
        inner = [f for f in held if inspect.isfunction(f) and f.__name__ == "__init__"]
        if len(inner) != 1:
            return init
        init = inner[0]
    return init


_FORWARDING = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a closure cell not filled yet
        return None


def bases(cls: type) -> tuple[str, ...]:
    """The public module classes `cls` derives from (nearest first), without `nn.Module`:
    the diff names a swap to a subclass as one."""
    return tuple(
        qualname(klass)
        for klass in cls.__mro__[1:]
        if issubclass(klass, nn.Module)
        and klass is not nn.Module
        and not klass.__name__.startswith("_")
    )


def hparams(
    module: nn.Module, above: Mapping[str, Mapping[str, Value]] | None = None
) -> tuple[dict[str, Value], dict[str, dict[str, Value]]]:
    """The hyperparameters a module's constructors configured (its class's and its bases') and
    the module keeps as attributes, and the config-like values among them by name.

    A parameter or `None` stored under a constructor argument that is a switch (Conv2d's
    `bias=True`) is recorded as whether it exists; a parameter under any other argument's name
    (timm's `pos_embed='learn'` keeps the `pos_embed` tensor) is a tensor, not a setting, and
    neither it nor other submodules and tensors are hyperparameters. A config-like value
    (`nnviz.tracers.configs`) is recorded field by field (`config.hidden_size`), each only where
    it differs from the config of that name an ancestor records (`above`): a config shared by
    every layer is recorded once, on the outermost module that keeps it.
    """
    out: dict[str, Value] = {}
    found: dict[str, dict[str, Value]] = {}
    for name, default in _init_defaults(type(module)).items():
        try:
            value = getattr(module, name)
        except Exception:  # not kept as an attribute, or a property that fails
            continue
        switch = isinstance(default, bool) or name == "bias"
        if switch and (value is None or isinstance(value, nn.Parameter)):
            out[name] = value is not None
        elif isinstance(value, (nn.Module, torch.Tensor)) or inspect.ismethod(value):
            continue
        elif (config := configs.fields(value)) is not None:
            found[name] = {k: encode(v) for k, v in config.items()}
            inherited = (above or {}).get(name, {})
            for key, field in found[name].items():
                if inherited.get(key, _MISSING) != field:
                    out[f"{name}.{key}"] = field
        else:
            out[name] = encode(value)
    return out, found


_MISSING = object()


def input_default(model: nn.Module, name: str) -> list[tuple[str, Any]]:
    """An input node's constant slots: `[("default", value)]` when the forward argument has a
    default (an optional input the caller may leave out; the diff compares it with a constant
    by value), else nothing. Values are raw: each tracer encodes its constants."""
    try:
        param = inspect.signature(model.forward).parameters.get(name)
    except (TypeError, ValueError):
        return []
    if param is None or param.default is inspect.Parameter.empty:
        return []
    return [("default", param.default)]


def module_names(model: nn.Module) -> dict[int, tuple[str, ...]]:
    """Every name of each module object, first name first: a module registered under several
    names (transformers 4's T5 keeps `shared` also as `encoder.embed_tokens`) has several."""
    names: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(path)
    return {key: tuple(paths) for key, paths in names.items()}


def call_name(names: tuple[str, ...], scope: str) -> str:
    """The name a module is called by from `scope`: the one of its names directly under the
    caller (T5's encoder calls `shared` as its own `embed_tokens`), else its first name. So a
    library that turns a shared module into a module of its own tying the same weights records
    the same calls."""
    return next((name for name in names if parent_path(name) == scope), names[0])


def module_tree(model: nn.Module) -> list[Module]:
    """Every module of `model` by every name it has, in `named_modules()` order.

    A module registered under a second name is listed again under it, its parameters recorded as
    tied to the first name's (`ties`), exactly as a module of its own that ties its weights to
    another's is: the two ways of sharing an embedding compute the same and record the same.
    Each record holds its part of the state-dict contract (`state_contract`), read from the
    module tree alone: nothing is run, no memory is touched (modules on meta record the same).
    """
    tree = []
    recorded: dict[str, dict[str, dict[str, Value]]] = {}  # the configs each path keeps
    first = first_names(model)
    for path, module in model.named_modules(remove_duplicate=False):
        above: dict[str, dict[str, Value]] = {}
        up = parent_path(path)
        while up is not None:  # the nearest ancestor's config of each name
            for name, config in recorded.get(up, {}).items():
                above.setdefault(name, config)
            up = parent_path(up)
        own, recorded[path] = hparams(module, above)
        tree.append(
            Module(
                path=path,
                cls=qualname(type(module)),
                bases=bases(type(module)),
                params=sum(p.numel() for p in module.parameters()),
                hparams=own,
                **state_contract(module, path, first),
            )
        )
    return tree


def _state_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor, bool]]:
    """A module's own `state_dict()` tensors as torch saves them: (name, tensor, is_parameter);
    parameters and buffers that are None and non-persistent buffers are not saved."""
    skip: set[str] = getattr(module, "_non_persistent_buffers_set", set())
    for name, param in module.named_parameters(recurse=False):
        yield name, param, True
    for name, buf in module.named_buffers(recurse=False):
        if name not in skip:
            yield name, buf, False


def first_names(model: nn.Module) -> dict[int, str]:
    """The qualified name each state tensor was first registered under, by object id."""
    first: dict[int, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for name, tensor, _ in _state_tensors(module):
            first.setdefault(id(tensor), scoped(path, name))
    return first


def state_contract(module: nn.Module, path: str, first: dict[int, str]) -> dict[str, Any]:
    """A module's own part of the state-dict contract, as `Module` fields: parameter and
    persistent-buffer shapes, their dtypes, ties to a first name, `_extra_state`."""
    parameters: dict[str, tuple[int, ...]] = {}
    buffers: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    ties: dict[str, str] = {}
    for name, tensor, is_param in _state_tensors(module):
        (parameters if is_param else buffers)[name] = tuple(int(d) for d in tensor.shape)
        dtypes[name] = str(tensor.dtype).removeprefix("torch.")
        if first.get(id(tensor), scoped(path, name)) != scoped(path, name):
            ties[name] = first[id(tensor)]
    extra = getattr(type(module), "get_extra_state", None) is not nn.Module.get_extra_state
    return {
        "parameters": parameters,
        "buffers": buffers,
        "dtypes": dtypes,
        "ties": ties,
        "extra_state": extra,
    }


def versions() -> dict[str, str]:
    """Versions of the libraries a trace depends on (metadata; never compared)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": torch.__version__.split("+")[0]}
    # nnviz's distribution is `nnviz-arch` (the name `nnviz` on PyPI is another tool).
    for package, distribution in (("torchvision", "torchvision"), ("nnviz", "nnviz-arch")):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(distribution)
    return out


class IdAllocator:
    """Hands out structural node ids: `base`, then `base:1`, `base:2` for repeats.

    Ids never collide, even when a module's own name looks like a repeat (`relu:1`) or a module
    and a function share a name in one scope: the counter skips ids already handed out.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._issued: set[str] = set()

    def __call__(self, base: str) -> str:
        count = self._seen.get(base, 0)
        node_id = base if count == 0 else f"{base}:{count}"
        while node_id in self._issued:
            count += 1
            node_id = f"{base}:{count}"
        self._seen[base] = count + 1
        self._issued.add(node_id)
        return node_id


def scoped(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


R = TypeVar("R")


def nested_refs(value: Any, slot: str, kind: type[R]) -> Iterator[tuple[str, R]]:
    """The `kind` objects (fx nodes, recorded refs) inside an argument, with their nested slot
    (`0`, `0.1`, `0.key`); both tracers name slots this way."""
    if isinstance(value, kind):
        yield slot, value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from nested_refs(item, f"{slot}.{i}", kind)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nested_refs(item, f"{slot}.{key}", kind)
    elif isinstance(value, slice):
        for i, item in enumerate((value.start, value.stop, value.step)):
            yield from nested_refs(item, f"{slot}.{i}", kind)


def nested_parts(value: Any, slot: str, is_ref: Callable[[Any], bool]) -> Iterator[tuple[str, Any]]:
    """An argument split where it holds traced values: each reference (`is_ref`) and each
    constant beside one with its nested slot (`size.0` a traced size, `size.1` the constant -1);
    a container without references stays whole. An unset slice bound (`None`) is left out.
    (The output node keeps only its references: what else an output carries is not the graph.)"""
    if is_ref(value) or not holds_ref(value, is_ref):
        yield slot, value
        return
    if isinstance(value, slice):
        items: Iterable[tuple[Any, Any]] = enumerate((value.start, value.stop, value.step))
        items = [(i, item) for i, item in items if item is not None]
    elif isinstance(value, dict):
        items = value.items()
    else:
        items = enumerate(value)
    for key, item in items:
        yield from nested_parts(item, f"{slot}.{key}", is_ref)


def holds_ref(value: Any, is_ref: Callable[[Any], bool]) -> bool:
    if is_ref(value):
        return True
    if isinstance(value, (tuple, list)):
        return any(holds_ref(v, is_ref) for v in value)
    if isinstance(value, dict):
        return any(holds_ref(v, is_ref) for v in value.values())
    if isinstance(value, slice):
        return any(holds_ref(v, is_ref) for v in (value.start, value.stop, value.step))
    return False


SHAPE_QUERIES = {
    "function": frozenset({"getattr", "operator.getitem", "len"}),
    "method": frozenset({"size", "dim", "numel", "__len__"}),
}
"""Side-effect-free reads (of a shape, an item of it), by call kind and op name: dropping one
that nothing uses loses nothing, so every tracer drops them. Other unused calls stay, since they
may act in place."""


def is_shape_query(kind: str, op: str) -> bool:
    return op in SHAPE_QUERIES.get(kind, ())


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for a stateless model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def cpu_copy(model: nn.Module) -> nn.Module:
    """An uninitialised CPU copy of a meta model: its values are garbage, its shapes are right."""
    import copy

    return copy.deepcopy(model).to_empty(device="cpu")
