"""Untrusted documents: snapshot and drift-report loaders stop bombs with one clear line, never
import or run anything a file names, and never raise anything but their own error."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from unittest import mock
from xml.etree import ElementTree

import pygraphviz
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from support import run_nnviz, torch_blocker, traced

import nnviz
from nnviz import snapshot, transform, untrusted
from nnviz.driftreport import DriftReport, DriftReportError
from nnviz.errors import NNVizError, SnapshotError
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.render import render, to_dot


def _small() -> Graph:
    return Graph(
        [Node("input:x", "input", "x"), Node("fc", "module", "torch.nn.Linear", module="fc")],
        [Edge("input:x", "fc", ("0",))],
        [Module("", "m.M", 6), Module("fc", "torch.nn.Linear", 6, {"in_features": 2})],
        {"name": "small"},
    )


def _refusal(data: str | bytes, path: Path | None = None) -> str:
    with pytest.raises(SnapshotError) as caught:
        if path is not None:
            path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
            snapshot.load(path)
        else:
            snapshot.loads(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _nested(depth: int) -> str:
    doc = json.loads(snapshot.dumps(_small()))
    doc["meta"]["deep"] = "@"
    return json.dumps(doc).replace('"@"', "[" * depth + "]" * depth)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbf" + snapshot.dumps(_small()).encode(), "byte-order mark (BOM)"),
        (bytes(range(256)) * 64, "not UTF-8 text (byte 0x80 at offset 128)"),
        (snapshot.dumps(_small()).encode("utf-16"), "not UTF-8 text"),
        (b"\x00" * 100, "not valid JSON"),
        ("[" * 200_000 + "]" * 200_000, f"nested deeper than {untrusted.MAX_DEPTH} levels"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, "nested deeper than"),
        (_nested(untrusted.MAX_DEPTH), "nested deeper than"),  # parses, then is refused
        ('{"format": "nnviz-graph", "version": 1, "meta": {"x": 1e999}}', "out of range"),
        ('{"format": "nnviz-graph", "version": 1, "meta": {"x": ' + "9" * 5000 + "}}", "JSON"),
        ('{"format": "nnviz-graph", "version": 1, "meta": {"x": "\\ud800"}}', "surrogate"),
        ('{"format": "nnviz-graph", "meta": {"x": "' + "a" * 200_000 + '"}}', "200,000 char"),
        ('{"format": "nnviz-graph", "version": 0}', "version 0 is not supported"),
        (
            json.dumps({"format": "nnviz-graph", "version": snapshot.VERSION + 1}),
            f"newer nnviz (format version {snapshot.VERSION + 1}",
        ),
        ('{"format": "nnviz-graph", "version": true}', '"version" must be an integer'),
    ],
    ids=[
        "bom",
        "binary",
        "utf16",
        "nul",
        "deep-array",
        "deep-object",
        "deep-within-recursion-limit",
        "huge-float",
        "huge-int",
        "lone-surrogate",
        "long-string",
        "older-version",
        "newer-version",
        "bool-version",
    ],
)
def test_hostile_documents_get_one_clear_line(
    data: str | bytes, expected: str, tmp_path: Path
) -> None:
    message = _refusal(data, tmp_path / "snap.json")
    assert expected in message and message.startswith(str(tmp_path / "snap.json"))


def test_depth_limit_is_exact_and_generous(resnet18: Graph) -> None:
    # The document and its meta are two levels; the innermost list is then at MAX_DEPTH.
    assert snapshot.loads(_nested(untrusted.MAX_DEPTH - 2)).meta["deep"]
    assert "nested deeper" in _refusal(_nested(untrusted.MAX_DEPTH - 1))
    # A real model sits far inside every limit.
    text = snapshot.dumps(resnet18)
    assert len(text) < untrusted.MAX_BYTES // 100
    assert snapshot.loads(text) == resnet18


def test_a_valid_surrogate_pair_is_text() -> None:
    doc = json.loads(snapshot.dumps(_small()))
    doc["meta"]["name"] = "\ud83d\ude00"  # json.dumps writes the escaped pair
    assert snapshot.loads(json.dumps(doc)).name == "\U0001f600"


def test_a_50_mb_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(untrusted.SNAPSHOT_LIMIT_ENV, "32MiB")  # what a 1 GB machine reads
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.write(b'{"format": "nnviz-graph", "meta": {"x": "')
        handle.write(b"a" * (50 * 1024 * 1024))
        handle.write(b'"}}')
    start = time.perf_counter()
    message = _refusal_of_path(big)
    assert time.perf_counter() - start < 1.0
    assert message == (
        f"{big}: too large (50.0 MiB; the limit is 32 MiB); it is not a snapshot nnviz wrote, "
        "or a graph larger than this machine reads by default: if you trust it, set "
        "NNVIZ_MAX_SNAPSHOT to its size (e.g. NNVIZ_MAX_SNAPSHOT=2GB)"
    )
    with pytest.raises(DriftReportError, match="holds a string of 52,428,800 characters"):
        DriftReport.load(big)  # a drift report may be larger (one diff per drift): read, refused
    with pytest.raises(DriftReportError, match=r"too large \(200\.0 MiB; the limit is 128 MiB\)"):
        DriftReport.loads(b" " * (200 * 1024 * 1024))
    result = run_nnviz(str(big), "-o", str(tmp_path / "big.svg"))  # the limit set above
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"nnviz: error: {message}"]


@pytest.mark.parametrize(
    ("free", "limit"),
    [
        (None, 32 * 2**20),  # unknown: the floor
        (2 * 2**30, 64 * 2**20),  # a small CI runner: 1/32 of what is free
        (16 * 2**30, 512 * 2**20),
        (512 * 2**30, 2**30),  # a large server: the ceiling
        (2**20, 32 * 2**20),  # almost nothing free: still the floor
    ],
)
def test_the_snapshot_limit_scales_with_the_memory_available(
    free: int | None, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded snapshot takes ~13 times its size and a diff holds two: the limit is what this
    machine can hold (MemAvailable / 32), never under 32 MiB, never over 1 GiB by default."""
    monkeypatch.delenv(untrusted.SNAPSHOT_LIMIT_ENV, raising=False)
    monkeypatch.setattr("nnviz.sizes.available", lambda: free)
    assert untrusted.snapshot_limit(SnapshotError) == limit


def test_nnviz_max_snapshot_sets_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = nnviz.save(_small(), tmp_path / "small.json")
    size = path.stat().st_size
    monkeypatch.setenv(untrusted.SNAPSHOT_LIMIT_ENV, str(size - 1))
    assert "too large" in _refusal_of_path(path)
    with pytest.raises(SnapshotError, match="too large"):
        snapshot.loads(path.read_text())
    monkeypatch.setenv(untrusted.SNAPSHOT_LIMIT_ENV, str(size))
    assert nnviz.load(path) == _small()
    monkeypatch.setenv(untrusted.SNAPSHOT_LIMIT_ENV, "3GB")  # above the default ceiling: allowed
    assert untrusted.snapshot_limit(SnapshotError) == 3 * 10**9
    monkeypatch.setenv(untrusted.SNAPSHOT_LIMIT_ENV, "lots")
    assert _refusal_of_path(path) == (
        "NNVIZ_MAX_SNAPSHOT 'lots': give a size such as 8GB, 512MiB or 1000000 (bytes)"
    )


def _refusal_of_path(path: Path) -> str:
    with pytest.raises(SnapshotError) as caught:
        snapshot.load(path)
    return str(caught.value)


def test_schema_messages_name_the_exact_field() -> None:
    doc = json.loads(snapshot.dumps(_small()))
    doc["nodes"] = [{"id": f"n{i}", "kind": "function", "op": "torch.relu"} for i in range(20)]
    doc["edges"] = []
    doc["nodes"][17]["op"] = 3
    assert _refusal(json.dumps(doc)) == "snapshot: nodes[17].op: Input should be a valid string"
    doc["nodes"][17]["op"] = "x"
    doc["nodes"][4]["kind"] = "exec"
    assert _refusal(json.dumps(doc)).startswith("snapshot: nodes[4].kind: Input should be ")
    doc["nodes"][4]["kind"] = "function"
    doc["modules"][1]["params"] = -1
    assert _refusal(json.dumps(doc)).startswith("snapshot: modules[1].params: Input should be")


EVIL = [
    "os.system",
    "__import__('os').system('touch PWNED')",
    "builtins.eval",
    "subprocess.Popen",
    "<script>alert(1)</script>",
    '"]; n9 [label="x',
]


def _evil_graph() -> Graph:
    nodes = [Node("input:x", "input", "x")]
    modules = [Module("", "os.system", 0)]
    for i, text in enumerate(EVIL):
        nodes.append(
            Node(
                f"m{i}",
                "module",
                text,
                module=f"m{i}",
                args={"cmd": {"$repr": text}, "e": {"$enum": text}, "t": {"$dtype": text}},
            )
        )
        modules.append(Module(f"m{i}", text, 1, {"callable": {"$repr": text}}))
    nodes.append(Node("output", "output", "output"))
    chain = [n.id for n in nodes]
    edges = [Edge(a, b, ("0",)) for a, b in itertools.pairwise(chain)]
    return Graph(nodes, edges, modules, {"name": "__import__('os')"})


def test_named_callables_stay_inert_and_draw_as_text(tmp_path: Path) -> None:
    """A snapshot naming `os.system` or `__import__` is data: loading and drawing it (in a process
    where torch cannot be imported) runs nothing and shows every name literally."""
    path = snapshot.save(_evil_graph(), tmp_path / "evil.json")
    blocker = torch_blocker(tmp_path)
    env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}
    result = run_nnviz(str(path), "-o", "evil.svg", "-d", "-1", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "PWNED").exists()
    svg = (tmp_path / "evil.svg").read_text(encoding="utf-8")

    shown = {
        "".join(t.itertext()) for t in ElementTree.fromstring(svg).iter() if t.tag.endswith("text")
    }
    for text in EVIL:
        assert text in shown or f"{text}" in " ".join(shown), text
    assert snapshot.load(path) == _evil_graph()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(data=st.binary(max_size=300) | _json.map(lambda d: json.dumps(d).encode()))
def test_any_bytes_load_or_raise_the_loaders_own_error(data: bytes) -> None:
    for load, error in ((snapshot.loads, SnapshotError), (DriftReport.loads, DriftReportError)):
        try:
            load(data)
        except error as exc:
            assert "\n" not in str(exc) and str(exc).strip()


@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", '{"k":', '{"format":']))
def test_any_nesting_is_refused_without_recursion_errors(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "0" + closer * depth if opener != "[" else "[" * depth + "]" * depth
    with pytest.raises(SnapshotError) as caught:
        snapshot.loads(text)
    assert "\n" not in str(caught.value)
    if depth > untrusted.MAX_DEPTH:
        assert "nested deeper than" in str(caught.value)


def test_real_snapshot_limits_are_far_above_torchvision() -> None:
    graph = traced("resnet18", "default")
    doc = json.loads(snapshot.dumps(graph))
    untrusted.parse(json.dumps(doc), "x", SnapshotError)  # the checker accepts a real one
    assert 1000 * max(len(n.op) for n in graph.nodes) <= untrusted.MAX_STRING


# --- well-formed but strange graphs: loaded, drawn and diffed, or refused; never a crash ------

_IDS = st.sampled_from(["a", "b", "a.b", "a.b:1", "x.y.z", "input:x", "output", "c"])
_PATHS = st.sampled_from(["", "a", "a.b", "x", "x.y", "x.y.z", "q.r"])
_node = st.fixed_dictionaries(
    {
        "id": _IDS,
        "kind": st.sampled_from(["input", "output", "module", "function", "method"]),
        "op": st.sampled_from(["torch.relu", "x", "torch.nn.Conv2d", "", ".", "view"]),
        "scope": _PATHS,
    },
    optional={"module": _PATHS, "spec": _json, "args": st.dictionaries(st.text(max_size=3), _json)},
)
_module = st.fixed_dictionaries(
    {"path": _PATHS, "class": st.sampled_from(["m.M", "torch.nn.Conv2d", "", "."])},
    optional={
        "params": st.integers(0, 10**12),
        "hparams": st.dictionaries(st.text(max_size=3), _json, max_size=2),
    },
)


def _id(nodes: list[dict[str, object]], index: int) -> object:
    return nodes[index % len(nodes)]["id"] if nodes and index < 6 else "missing"


@settings(max_examples=120)
@given(
    nodes=st.lists(_node, max_size=6, unique_by=lambda n: n["id"]),
    modules=st.lists(_module, max_size=5, unique_by=lambda m: m["path"]),
    edges=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=8),
    layer=st.sampled_from([None, "a", "x.y"]),
)
def test_strange_graphs_are_refused_or_drawn_and_diffed(
    nodes: list[dict[str, object]],
    modules: list[dict[str, object]],
    edges: list[tuple[int, int]],
    layer: str | None,
) -> None:
    """Cycles, self-loops, duplicate ids, scopes without modules, modules without parents: a
    stranger's snapshot is refused with a `SnapshotError`, or it draws (any depth, any layer)
    and diffs like any other graph. Anything else that escapes is a bug."""
    doc = {
        "format": "nnviz-graph",
        "version": 1,
        "meta": {"name": "strange"},
        "modules": modules,
        "nodes": nodes,
        "edges": [  # index 6 names a node that does not exist
            {"source": _id(nodes, s), "target": _id(nodes, t), "slots": ["0"]} for s, t in edges
        ],
    }
    try:
        graph = snapshot.loads(json.dumps(doc))
    except SnapshotError as exc:
        assert "\n" not in str(exc)
        event("refused")
        return
    event("loaded")
    assert snapshot.loads(snapshot.dumps(graph)) == graph
    for depth in (-1, 1):
        try:
            shown = transform.select(graph, layer) if layer else graph
        except NNVizError:
            continue
        collapsed = transform.collapse_depth(shown, depth)
        dot = to_dot(collapsed)
        assert (pygraphviz.AGraph(string=dot).number_of_nodes() > 0) == (len(collapsed) > 0)
        if depth == -1:
            ElementTree.fromstring(render(dot, "svg"))  # Graphviz lays it out; the SVG parses
    result = nnviz.diff(graph, graph)
    assert result.identical
    other = nnviz.diff(graph, _small())
    assert other.to_text().startswith("identical: ") == other.identical
    assert other.to_markdown().startswith("### nnviz diff: `")


# --- the quick reader: what `dumps` wrote, read without the walk over every value -------------

_FULL = snapshot.dumps(
    Graph(
        [
            Node("input:x", "input", "x"),
            Node("fc", "module", "x.L", "", "fc", {"0": 1}, {"$tuple": [2]}, {"a": 1}, {"macs": 4}),
            Node("output", "output", "output"),
        ],
        [Edge("input:x", "fc", ("0",)), Edge("fc", "output", ("0",))],
        [Module("", "m.M", 6), Module("fc", "x.L", 6, {"k": 2}, {"w": (3, 2)}, ("t.L",))],
        {"name": "full", "inputs": None},
    )
)
_SITES = ['"k":2', '"0":1', '"$tuple":[2]', '"a":1', '"params":6,"path":"fc"', '"id":"fc"']
_SITES += ['"macs":4', '"version": 4', '"w":[3,2]', '"name":"full"', '"source":"fc"', '"op":"x"']
_ODD = ["1e999", "-1e999", "NaN", "1" + "0" * 400 + ".0", "9" * 5000, "4.0", "true", '"\\ud800"',
        '"\\ud83d\\ude00"', "[" * 97 + "]" * 97, "[" * 98 + "]" * 98, '"fc"', '"output"', "null",
        f'"{"a" * untrusted.MAX_STRING}"', f'"{"é" * (untrusted.MAX_STRING + 1)}"']  # fmt: skip


def _outcome(text: str | bytes) -> str:
    try:
        graph = snapshot.loads(text)
    except SnapshotError as exc:
        return f"refused: {exc}"
    return f"{graph.printable} {snapshot.dumps(graph)}"


_RECORDS = ['"path":""', '"id":"output"', '"target":"output"']  # a key added after each
_KEYS = ["params", "hparams", "parameters", "bases", "ties", "buffers", "dtypes", "extra_state"]
_KEYS += ["scope", "module", "args", "spec", "meta", "cost", "slots", "zz"]
_VALUES = st.sampled_from(_ODD) | _json.map(json.dumps)


@settings(max_examples=200, deadline=None)
@given(
    changes=st.lists(st.tuples(st.sampled_from(_SITES), _VALUES), max_size=3),
    added=st.lists(st.tuples(st.sampled_from(_RECORDS), st.sampled_from(_KEYS), _VALUES)),
    one_line=st.booleans(),
    as_bytes=st.booleans(),
)
def test_the_quick_reader_loads_or_refuses_as_the_full_one(
    changes: list[tuple[str, str]],
    added: list[tuple[str, str, str]],
    one_line: bool,
    as_bytes: bool,
) -> None:
    """`untrusted.quick` skips `parse`'s walk over every value; whatever a document holds (a
    value too deep, too long, not finite, of the wrong type, a key more, anywhere), loading it
    gives the same graph or the same message as the full reader, which names the first fault."""
    text = _FULL.replace("\n", "") if one_line else _FULL
    for site, value in changes:
        key = site.rsplit(":", 1)[0]
        text = text.replace(site, f"{key}:{value}", 1)
    for site, key, value in added[:3]:
        text = text.replace(site, f'{site},"{key}":{value}', 1)
    data = text.encode("utf-8", "surrogatepass") if as_bytes else text
    with mock.patch.object(untrusted, "quick", lambda data, max_bytes: None):
        full = _outcome(data)
    assert _outcome(data) == full


def test_the_quick_reader_proves_string_length_from_line_breaks() -> None:
    """No JSON string holds a line break, so a text whose every `MAX_STRING // 2` bytes hold
    one has no string too long; any other text is left to `parse`."""
    short = "a" * (untrusted.MAX_STRING // 2 - 10)
    assert untrusted.quick(f'{{\n"x": "{short}"\n}}') == {"x": short}
    longest = f'{{\n"x": "{"a" * untrusted.MAX_STRING}"\n}}'
    assert untrusted.quick(longest) is None  # a line this long: unsure, left to `parse`
    assert untrusted.parse(longest, "x", SnapshotError) == json.loads(longest)
    assert untrusted.quick("[1e999,\n2]") == [float("inf"), 2]  # numbers: the caller's
    assert untrusted.quick('["\\ud800"]') is None
    assert untrusted.bounded([{"a": [1.5]}], untrusted.MAX_DEPTH - 1)
    assert not untrusted.bounded([{"a": [1.5]}], untrusted.MAX_DEPTH)
    assert not untrusted.bounded([[{"a": float("nan")}]], 1)
