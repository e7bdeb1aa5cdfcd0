"""Model specs: turn `resnet18`, `pkg.module:callable` or `path/file.py:callable` into a module.

This module (with `nnviz.trace`) is the only place that imports torch, and only when called.
Models are built on the `meta` device by default: no weight initialisation and no memory, with
exact parameter counts; a constructor that cannot run there is retried on the CPU.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnviz.errors import ModelBuildError, ModelSpecError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A parsed MODEL argument."""

    kind: str
    """`torchvision`, `package`, `file` or `snapshot`."""
    target: str
    """The torchvision name, importable module, file path or snapshot path."""
    attr: str | None = None
    """The callable's (dotted) name inside `target`, for `package` and `file`."""

    @property
    def name(self) -> str:
        """A short name for output files: `resnet18`, `MyModel`, the snapshot's stem."""
        if self.kind == "snapshot":
            return Path(self.target).stem
        if self.attr:
            return self.attr.rsplit(".", 1)[-1]
        return self.target

    def title(self, args: dict[str, Any] | None = None) -> str:
        """The name a drawing and its file get: a factory's `model_name` argument when it has one
        (`timm:create_model -a model_name=resnet50` is `resnet50`), else `name`."""
        model_name = (args or {}).get(MODEL_NAME_ARGUMENT)
        if self.kind in ("package", "file") and isinstance(model_name, str) and model_name:
            return model_name
        return self.name


MODEL_NAME_ARGUMENT = "model_name"
"""The constructor argument that names the model a factory builds (timm's `create_model`)."""


def parse_spec(spec: str) -> ModelSpec:
    """Classify a MODEL argument without importing anything."""
    if not spec.strip():
        raise ModelSpecError(
            "empty MODEL: give a torchvision name, pkg.module:callable, "
            "path/file.py:callable or a snapshot .json"
        )
    if spec.endswith(".json"):
        return ModelSpec("snapshot", spec)
    if ":" in spec:
        target, _, attr = spec.rpartition(":")
        if not attr or not target:
            raise ModelSpecError(f"{spec!r}: expected MODULE:CALLABLE or FILE.py:CALLABLE")
        if target.endswith(".py"):
            return ModelSpec("file", target, attr)
        return ModelSpec("package", target, attr)
    if spec.endswith(".py"):
        raise ModelSpecError(f"{spec!r}: name the callable too, as {spec}:make_model")
    return ModelSpec("torchvision", spec)


def build(spec: ModelSpec, kwargs: dict[str, Any] | None = None, device: str = "meta") -> nn.Module:
    """Build the model a spec names on `device`, in eval mode.

    On `meta` (the default) three ways are tried in turn: every tensor the constructor creates on
    meta; then ordinary tensors for the constructor's own arithmetic (regnet computes its widths
    with torch) but parameters and buffers moved to meta as they are registered, so weight
    initialisation still costs nothing; then, as a last resort, a plain CPU build, each new
    tensor counted before it is allocated (`nnviz.tracers.budget.counted_build`): one that would
    take the build above the memory limit (`memory_limit` of `nnviz.trace`, else the memory
    available) is refused in one line.
    """
    factory, extra = _factory(spec)
    arguments = {**extra, **(kwargs or {})}
    ways = [device] if device != "meta" else ["meta", "meta-state", "cpu"]
    failure = ""
    for attempt, way in enumerate(ways, 1):
        try:
            if failure and way == "cpu":  # its size is unknown until built: counted as it grows
                from nnviz.tracers.budget import counted_build

                with counted_build(_qualname(factory), failure):
                    return _call(factory, arguments, way).eval()
            return _call(factory, arguments, way).eval()
        except ModelBuildError:
            raise
        except Exception as exc:
            failure = _one_line(exc)
            if attempt == len(ways):
                raise ModelBuildError(f"{_qualname(factory)} raised {failure}") from None
    raise AssertionError("unreachable")


def _call(factory: Any, arguments: dict[str, Any], way: str) -> nn.Module:
    import torch
    from torch import nn

    placement = _state_on_meta() if way == "meta-state" else torch.device(way)
    with placement:
        try:
            model = factory(**arguments)
        except TypeError as exc:
            if "argument" in str(exc):
                raise ModelBuildError(f"{_qualname(factory)}: {exc}") from None
            raise
    if not isinstance(model, nn.Module):
        raise ModelBuildError(
            f"{_qualname(factory)} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


@contextlib.contextmanager
def _state_on_meta() -> Iterator[None]:
    """Move every parameter and buffer to meta as a module registers it (so initialising it is a
    no-op), while other tensors the constructor computes with stay ordinary CPU tensors."""
    from torch import nn

    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter_on_meta(module: nn.Module, name: str, param: Any) -> None:
        if type(param) is nn.Parameter and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer_on_meta(module: nn.Module, name: str, tensor: Any, persistent: bool = True) -> None:
        if tensor is not None and not isinstance(tensor, nn.Parameter):
            tensor = tensor.to("meta")
        register_buffer(module, name, tensor, persistent)

    setattr(nn.Module, "register_parameter", parameter_on_meta)  # noqa: B010
    setattr(nn.Module, "register_buffer", buffer_on_meta)  # noqa: B010
    try:
        yield
    finally:
        setattr(nn.Module, "register_parameter", register_parameter)  # noqa: B010
        setattr(nn.Module, "register_buffer", register_buffer)  # noqa: B010


def _factory(spec: ModelSpec) -> tuple[Any, dict[str, Any]]:
    if spec.kind == "torchvision":
        return _torchvision_factory(spec.target)
    if spec.kind == "package":
        module = _import_module(spec)
    elif spec.kind == "file":
        module = _import_file(Path(spec.target))
    else:
        raise ModelSpecError(f"{spec.target!r} is a snapshot, not a model")
    assert spec.attr is not None
    obj: Any = module
    for part in spec.attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            hint = _did_you_mean(spec.attr, names) or _callables(module)
            raise ModelSpecError(f"{spec.target} has no {spec.attr!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelSpecError(f"{spec.target}:{spec.attr} is not callable")
    return obj, {}


def _import_module(spec: ModelSpec) -> Any:
    """Import `spec.target` with the current folder importable, as `python -m`, uvicorn and
    flask do: `nnviz mymodel:Net` works in the folder that holds mymodel.py."""
    with _on_sys_path(Path.cwd()):
        try:
            return importlib.import_module(spec.target)
        except ModuleNotFoundError as exc:
            raise ModelSpecError(
                f"cannot import {spec.target!r}: {exc} (looked in the current folder and the "
                f"installed packages; or give a file: path/to/file.py:{spec.attr})"
            ) from None
        except Exception as exc:
            raise ModelBuildError(f"importing {spec.target!r} failed: {_one_line(exc)}") from None


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """`folder` first on `sys.path` while importing (unless it is there already), then as before."""
    entry = str(folder.resolve())
    present = entry in sys.path or (entry == str(Path.cwd().resolve()) and "" in sys.path)
    if not present:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if not present and entry in sys.path:
            sys.path.remove(entry)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelSpecError(f"{path}: no such file")
    name = f"nnviz_model_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelSpecError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    with _on_sys_path(path.parent):
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ModelBuildError(f"importing {path} failed: {_one_line(exc)}") from None
    return module


def torchvision_models() -> Any:
    """`torchvision.models`; a torchvision that cannot load (a build that does not fit the
    installed torch) is a `ModelBuildError` naming both and the fix."""
    try:
        import torchvision.models as tvm
    except Exception as exc:
        from nnviz.builds import explain

        mismatched = explain(exc)
        if mismatched is None:
            raise
        raise ModelBuildError(mismatched) from None
    return tvm


def torchvision_names() -> list[str]:
    """Every model name torchvision's registry knows, all families included."""
    return sorted(torchvision_models().list_models())


_REGISTERED = re.compile(
    r"^@register_model\((?:name\s*=\s*[\"'](\w+)[\"'])?\).*?^def (\w+)", re.MULTILINE | re.DOTALL
)


def torchvision_names_from_source() -> list[str]:
    """The names torchvision registers, read from its source files without importing it (and so
    torch: seconds): every `@register_model()` function. Empty when torchvision is missing or
    registers differently; then only `torchvision_names()` can tell. Read once per process
    (~0.14 s): the command line checks a name, then `nnviz.trace` checks it again."""
    return list(_names_in_source())


@functools.cache
def _names_in_source() -> tuple[str, ...]:
    found = importlib.util.find_spec("torchvision")
    if found is None or found.origin is None:
        return ()
    names: set[str] = set()
    for source in sorted((Path(found.origin).parent / "models").rglob("*.py")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for match in _REGISTERED.finditer(source.read_text(encoding="utf-8")):
                names.add(match[1] or match[2])
    return tuple(sorted(names))


def check_torchvision_name(name: str) -> None:
    """Refuse an unknown torchvision name, with suggestions, before torch is imported."""
    names = torchvision_names_from_source()
    if "resnet18" in names and name not in names:  # the source was read as expected
        _unknown_model(name, names)


def _unknown_model(name: str, names: list[str]) -> None:
    raise ModelSpecError(
        f"unknown model {name!r}: not a torchvision model name, pkg.module:callable, "
        f"file.py:callable or .json snapshot" + _did_you_mean(name, names)
    )


def _torchvision_factory(name: str) -> tuple[Any, dict[str, Any]]:
    check_torchvision_name(name)
    tvm = torchvision_models()
    names = torchvision_names()
    if name not in names:
        _unknown_model(name, names)
    builder = tvm.get_model_builder(name)
    extra: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        extra["weights_backbone"] = None
    return builder, extra


def _callables(module: Any) -> str:
    """` (callables defined there: a, b, c)`, or `` when it defines none."""
    names = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    ]
    shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
    return f" (callables defined there: {shown})" if names else ""


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", repr(obj))
    source = getattr(sys.modules.get(module), "__file__", None)
    if module.startswith("nnviz_model_") and source:
        return f"{Path(str(source)).name}:{name}"  # as the user wrote it: models.py:make
    return f"{module}.{name}"


def _one_line(exc: BaseException) -> str:
    from nnviz.builds import explain

    mismatched = explain(exc)  # mismatched torch and torchvision builds: name them and the fix
    if mismatched is not None:
        return mismatched
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def read_as_strings(pairs: list[str] | tuple[str, ...]) -> str:
    """`` or a note naming the `-a` values that were no Python literal and so were read as
    strings (`-a num_classes=ten`), for the error of a constructor that refused them."""
    values, as_text = _parse_arguments(pairs)
    shown = [f"-a {key}={values[key]} was read as the string {values[key]!r}" for key in as_text]
    return f" (note: {'; '.join(shown)})" if shown else ""


def parse_arguments(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse `-a KEY=VALUE` strings; VALUE is a Python literal (`10`, `0.5`, `(3, 3)`, `None`)
    read with `ast.literal_eval`, and anything that is not a literal is taken as a string."""
    return _parse_arguments(pairs)[0]


def _parse_arguments(pairs: list[str] | tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """The arguments, and the keys whose value was no literal and was taken as a string."""
    import ast
    import warnings

    out: dict[str, Any] = {}
    as_text: list[str] = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelSpecError(f"-a {pair!r}: expected KEY=VALUE with KEY a Python identifier")
        try:
            with warnings.catch_warnings():  # `1abc` would print a SyntaxWarning line
                warnings.simplefilter("ignore", SyntaxWarning)
                out[key] = ast.literal_eval(text.strip())
            if key in as_text:
                as_text.remove(key)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[key] = text.strip()
            if key not in as_text:
                as_text.append(key)
    return out, as_text
