"""Reading JSON documents that may come from strangers (snapshots, drift reports) within limits.

`read_bytes(path, error)` reads a file no larger than `MAX_BYTES` (checked before reading, so a
huge file costs nothing); `parse(data, source, error)` decodes strict UTF-8 and parses JSON, then
checks nesting depth and string length without recursion. Every fault raises `error` (an
`NNVizError` subclass) with one line naming the source, what is wrong and what to do; nothing else
escapes (no `RecursionError`, `MemoryError` or `UnicodeError`). The result is plain JSON data:
dicts, lists, strings, finite numbers, booleans and None. Nothing in it is ever imported or run.

`read_document(...)` is the one reader of nnviz's versioned documents (snapshot, drift report,
diff document): format, version (a newer one refused with "upgrade nnviz"), schema validation and
the error's location, so a version 2 of any format touches one function.

The limits are far above real models: the largest torchvision snapshot (maxvit_t traced with
data) is 0.9 MB, nests 9 levels deep and holds no string longer than 90 characters.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from nnviz.errors import NNVizError

if TYPE_CHECKING:
    from pydantic import BaseModel

Schema = TypeVar("Schema", bound="BaseModel")

MAX_BYTES = 32 * 1024 * 1024
"""Largest document read unless told otherwise (32 MiB); the least `snapshot_limit` gives."""
MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
"""The most `snapshot_limit` gives unless `SNAPSHOT_LIMIT_ENV` says otherwise (1 GiB: about 3.5
million nodes of bench/huge.py's model)."""
SNAPSHOT_LIMIT_ENV = "NNVIZ_MAX_SNAPSHOT"
"""The environment variable that sets the snapshot limit (`NNVIZ_MAX_SNAPSHOT=2GB`)."""
NOT_OURS = "it is not a document nnviz wrote"
SNAPSHOT_ADVICE = (
    f"it is not a snapshot nnviz wrote, or a graph larger than this machine reads by default: "
    f"if you trust it, set {SNAPSHOT_LIMIT_ENV} to its size (e.g. {SNAPSHOT_LIMIT_ENV}=2GB)"
)
LOAD_FACTOR = 32
"""Bytes of memory to have per byte of snapshot: a loaded snapshot takes about 13 times its size
(the 28.7 MB, 100,000-node one of bench/huge.py: 351 MB), and a diff holds two (775 MB at peak
for two of them)."""
MAX_REPORT_BYTES = 128 * 1024 * 1024
"""Largest drift report read (128 MiB): it carries one diff per drifting test, and the diff of two
large models (resnet18 against resnet152) is about 170 kB."""
MAX_DEPTH = 100
"""Deepest nesting of arrays and objects (the document itself is level 1)."""
MAX_STRING = 100_000
"""Longest string (or object key), in characters."""

_BOM = b"\xef\xbb\xbf"
_SPAN = MAX_STRING // 2
# A `\uD800`-`\uDFFF` escape: only a lone one is a problem, and only then is the slow check run.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def read_bytes(
    path: str | os.PathLike[str],
    error: type[NNVizError],
    *,
    max_bytes: int = MAX_BYTES,
    advice: str = NOT_OURS,
) -> bytes:
    """The bytes of `path`; `error` if it cannot be read or is larger than `max_bytes` (the
    message ends with `advice`)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise error(_too_large(str(path), size, max_bytes, advice))
            data = handle.read(max_bytes + 1)  # a pipe or special file has no size up front
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise error(_too_large(str(path), None, max_bytes, advice))
    return data


def snapshot_limit(error: type[NNVizError]) -> int:
    """The largest snapshot read: `NNVIZ_MAX_SNAPSHOT` (a size: `512MB`, `2GiB`) when set, else
    what this machine can hold (its available memory over `LOAD_FACTOR`), at least `MAX_BYTES`
    and at most `MAX_SNAPSHOT_BYTES`. A hostile file can so never take more memory than the
    machine has, and a real graph of millions of nodes still loads where it fits."""
    from nnviz.sizes import available, parse_size

    setting = os.environ.get(SNAPSHOT_LIMIT_ENV, "").strip()
    if setting:
        try:
            return parse_size(setting, what=SNAPSHOT_LIMIT_ENV) or 0
        except NNVizError as exc:
            raise error(str(exc)) from None
    free = available()
    fits = MAX_BYTES if free is None else free // LOAD_FACTOR
    return min(max(fits, MAX_BYTES), MAX_SNAPSHOT_BYTES)


def parse(
    data: str | bytes,
    source: str,
    error: type[NNVizError],
    *,
    max_bytes: int = MAX_BYTES,
    advice: str = NOT_OURS,
    decoded: Any = None,
) -> Any:
    """Parse a JSON document within the limits above; raise `error` with one line on any fault.
    `decoded`: what `quick` gave for the same `data`, which is then not decoded again."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise error(f"{source}: holds a lone UTF-16 surrogate, which is not text") from None
    else:
        raw = bytes(data)
    if len(raw) > max_bytes:
        raise error(_too_large(source, len(raw), max_bytes, advice))
    if raw.startswith(_BOM):
        raise error(
            f"{source}: starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without a BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            f"is it really a JSON file?"
        ) from None
    # Without `parse_float` (a fifth of parsing a 100,000-node snapshot), numbers are checked
    # in `_fault`'s walk; any fault reads it again as always, which names the first one.
    try:
        doc = json.loads(text, parse_constant=_refuse_constant) if decoded is None else decoded
        fault = _fault(doc, source)
    except (ValueError, RecursionError):
        fault = ""
    if fault is not None:
        try:
            doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise error(_too_deep(source)) from None
        except ValueError as exc:  # JSONDecodeError, the int digit limit, non-finite numbers
            raise error(f"{source}: not valid JSON ({_short(exc)})") from None
        fault = _fault(doc, source)
        if fault is not None:
            raise error(fault)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise error(
                f"{source}: holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF), "
                f"which is not text"
            ) from None
    return doc


def quick(data: str | bytes, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value `parse` would return for `data`, read without `parse`'s walk over every
    value, when the text alone shows what that walk proves of strings: none is longer than
    `MAX_STRING` (every `_SPAN` bytes hold a line break, which no JSON string holds) and none
    is a lone surrogate escape. Depth and numbers are NOT checked: the caller tests the exact
    type of every value it reads and gives all others to `bounded`, or else calls `parse`.
    None when unsure (a fault, a long line, a JSON `null`): `parse` then names any fault."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        text = data if isinstance(data, str) else raw.decode("utf-8")
    except UnicodeError:
        return None
    if len(raw) > max_bytes or raw.startswith(_BOM) or not _short_lines(raw):
        return None
    if b"\\" in raw and _SURROGATE_ESCAPE.search(text):
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None


def bounded(values: list[Any], depth: int) -> bool:
    """Whether no container among `values` (found at nesting level `depth`, the document being
    level 1) or within them is nested deeper than `MAX_DEPTH`, and no number there is not
    finite (nor a string too long): `_fault`'s walk over the values a `quick` reader takes
    without checking their type."""
    return _first_fault(values, depth, "") is None


def _short_lines(raw: bytes) -> bool:
    """Whether every whole `_SPAN` of bytes (from the start) holds a line break: then no run
    without one is `MAX_STRING` bytes long (it would hold a whole span), and a string, which lies
    within one line, has fewer characters than bytes. One memchr per span: microseconds."""
    find, spans = raw.find, range(0, len(raw) - _SPAN + 1, _SPAN)
    return all(find(b"\n", start, start + _SPAN) >= 0 for start in spans)


def read_document(
    data: str | bytes | Mapping[str, Any],
    source: str,
    error: type[NNVizError],
    schema: type[Schema],
    *,
    format: str,
    noun: str,
    reads: tuple[int, ...],
    max_bytes: int = MAX_BYTES,
) -> Schema:
    """A versioned nnviz document (text, or JSON data already parsed) validated by `schema`.

    Refuses, with `error` and one line naming `source`: another format (`noun` names the one
    expected, e.g. "graph snapshot"), a version that is not an integer, a newer version than the
    last of `reads` (upgrade nnviz), an older one not in `reads`, and a document the schema
    rejects (with the location of the first fault, e.g. `nodes[3].id`).
    """
    from pydantic import ValidationError  # lazy: nnviz's own documents load without it

    doc = document(data, source, error, format=format, noun=noun, reads=reads, max_bytes=max_bytes)
    try:
        return schema.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")  # a validator's own sentence
        raise error(f"{source}: {_location(first['loc'])}: {message}") from None


def document(
    data: str | bytes | Mapping[str, Any],
    source: str,
    error: type[NNVizError],
    *,
    format: str,
    noun: str,
    reads: tuple[int, ...],
    max_bytes: int = MAX_BYTES,
    advice: str = NOT_OURS,
    decoded: Any = None,
) -> Mapping[str, Any]:
    """The parsed document once its format and version are known to be readable (the checks of
    `read_document` before the schema's); `decoded` as for `parse`."""
    if isinstance(data, Mapping):
        doc: Any = data
    else:
        doc = parse(data, source, error, max_bytes=max_bytes, advice=advice, decoded=decoded)
    if not isinstance(doc, Mapping) or doc.get("format") != format:
        raise error(f'{source}: not an nnviz {noun} (no "format": "{format}")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise error(f'{source}: "version" must be an integer')
    if version > max(reads):
        raise error(
            f"{source}: written by a newer nnviz (format version {version}; this nnviz reads up "
            f"to {max(reads)}): upgrade nnviz to read it"
        )
    if version not in reads:
        raise error(
            f"{source}: {noun} format version {version} is not supported (this nnviz reads "
            f"{', '.join(map(str, reads))}); re-create it with this nnviz"
        )
    return doc


def _location(loc: tuple[int | str, ...]) -> str:
    """`('drifts', 0, 'line')` -> `drifts[0].line`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _fault(doc: Any, source: str) -> str | None:
    """The first value of `doc` (as `json.loads` returns it, so exact types decide) nested
    deeper than `MAX_DEPTH`, a string over `MAX_STRING` or a non-finite number, named for
    `source`; None for none."""
    return _first_fault([doc], 1, source)


def _first_fault(level: list[Any], depth: int, source: str) -> str | None:
    """`_fault` of the values `level`, found at nesting level `depth`. Level by level (no
    recursion, however deep the document), strings (most values) tested first."""
    while level:
        below: list[Any] = []
        extend = below.extend
        for value in level:
            kind = type(value)
            if kind is str:
                if len(value) > MAX_STRING:
                    return (
                        f"{source}: holds a string of {len(value):,} characters (the limit is "
                        f"{MAX_STRING:,}); it is not a document nnviz wrote"
                    )
            elif kind is dict or kind is list:
                if depth > MAX_DEPTH:
                    return _too_deep(source)
                extend(value)  # an object's keys are strings: checked one level down
                if kind is dict:
                    extend(value.values())
            elif kind is float and value - value != 0.0:  # inf - inf and nan - nan are nan
                return f"{source}: not valid JSON (number {value} is out of range)"
        level, depth = below, depth + 1
    return None


def _too_large(source: str, size: int | None, limit: int, advice: str) -> str:
    shown = f"{size / 1024 / 1024:.1f} MiB" if size is not None else "larger than the limit"
    return f"{source}: too large ({shown}; the limit is {limit / 1024 / 1024:.0f} MiB); {advice}"


def _too_deep(source: str) -> str:
    return f"{source}: nested deeper than {MAX_DEPTH} levels; it is not a document nnviz wrote"


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, JSON does not; nnviz writes them {"$float": ...}.
    raise ValueError(f'{name} is not JSON; nnviz writes it as {{"$float": ...}}')


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf and could never be written back
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
