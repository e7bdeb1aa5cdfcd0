"""The checks that run before torch is imported (`nnviz.preflight`) are the library's, and the
command line only calls them: the same bad input given to the `nnviz` command and to the Python
API (`nnviz.trace`, `nnviz.draw`, `nnviz.diff`) fails with the same one line, in a process that
never imported torch, and writes nothing. `-j` writes through `nnviz.draw`: its file is
`nnviz.save`'s. `nnviz.draw` refuses a keyword the drawing it makes cannot honour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import run_nnviz, traced

import nnviz
from nnviz import snapshot, transform

# a folder nnviz may not write to (root writes into a read-only folder)
UNWRITABLE = "/sys/r.pdf" if os.geteuid() == 0 else "locked/r.pdf"

# name: (command-line arguments, the same input given to the Python API)
CASES: dict[str, tuple[list[str], str]] = {
    "misspelt_model": (["resnet19"], "nnviz.trace('resnet19')"),
    "misspelt_model_drawn": (["resnet19", "-o", "r.svg"], "nnviz.draw('resnet19', 'r.svg')"),
    "misspelt_model_diffed": (
        ["diff", "good.json", "resnet19"],
        "nnviz.diff('good.json', 'resnet19')",
    ),
    "unknown_extension": (["resnet18", "-o", "r.xyz"], "nnviz.draw('resnet18', 'r.xyz')"),
    "no_extension": (["good.json", "-o", "drawing"], "nnviz.draw('good.json', 'drawing')"),
    "folder_in_the_way": (
        ["resnet18", "-o", "afile/r.pdf"],
        "nnviz.draw('resnet18', 'afile/r.pdf')",
    ),
    "unwritable_folder": (
        ["resnet18", "-o", UNWRITABLE],
        f"nnviz.draw('resnet18', {UNWRITABLE!r})",
    ),
    "shape_like_input": (
        ["resnet18", "-i", "(1,3,224,224)"],
        "nnviz.trace('resnet18', inputs='(1,3,224,224)')",
    ),
    "shape_like_input_diffed": (
        ["diff", "resnet18", "resnet19", "-i", "1x3x64x64"],
        "nnviz.diff('resnet18', 'resnet19', inputs='1x3x64x64')",
    ),
    "depth_zero": (["resnet18", "-d", "0"], "nnviz.draw('resnet18', 'resnet18.pdf', depth=0)"),
    "bad_memory_limit": (
        ["resnet18", "--memory-limit", "8XB"],
        "nnviz.trace('resnet18', memory_limit='8XB')",
    ),
    "eager_without_input": (
        ["resnet18", "--tracer", "eager"],
        "nnviz.trace('resnet18', tracer='eager')",
    ),
    "unknown_style_key": (
        ["resnet18", "-S", "nope=1"],
        "nnviz.draw('resnet18', 'resnet18.pdf', style={'nope': 1})",
    ),
    "diff_drawn_as_a_table": (
        ["diff", "good.json", "good.json", "-o", "d.txt"],
        "nnviz.draw(nnviz.diff('good.json', 'good.json'), 'd.txt')",
    ),
    "diff_drawing_in_a_file": (
        ["diff", "good.json", "good.json", "-o", "afile/d.pdf"],
        "nnviz.draw(nnviz.diff('good.json', 'good.json'), 'afile/d.pdf')",
    ),
}

# Runs in the test folder: each call's error line, and whether torch was imported by then.
API_SCRIPT = """
import json, sys
import nnviz
out = {}
for name, call in json.loads(sys.argv[1]).items():
    try:
        eval(call)
        out[name] = (None, "torch" in sys.modules)
    except nnviz.NNVizError as exc:
        out[name] = (f"{type(exc).__name__}: {exc}", "torch" in sys.modules)
print(json.dumps(out))
"""

# Runs the real command on every case in turn, in one process: each case's exit code, stdout,
# stderr, and whether torch was imported by then.
CASES_SCRIPT = """
import contextlib, io, json, sys
from nnviz.cli import main
out = {}
for name, args in json.loads(sys.argv[1]).items():
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["nnviz", *args]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    out[name] = (code, stdout.getvalue(), stderr.getvalue(), "torch" in sys.modules)
print(json.dumps(out))
"""

# Runs the real command and reports, on a last stdout line, whether torch was imported.
CLI_SCRIPT = """
import sys
from nnviz.cli import main
sys.argv = ["nnviz", *sys.argv[1:]]
try:
    main()
finally:
    print("torch imported:", "torch" in sys.modules)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("preflight")
    (here / "afile").write_text("a file, not a folder\n")
    (here / "locked").mkdir(mode=0o500)
    snapshot.save(traced("resnet18"), here / "good.json")
    yield here
    (here / "locked").chmod(0o700)


def _cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


Outcome = tuple[int, str, str, bool]  # exit code, stdout, stderr, torch imported


@pytest.fixture(scope="module")
def outcomes(folder: Path) -> tuple[dict[str, Outcome], dict[str, list]]:
    """Every case through the command and through the API (one process each, torch-free until
    a case imports it, which fails that case and every later one)."""
    before = sorted(p.name for p in folder.iterdir())
    scripts = [
        (API_SCRIPT, {name: call for name, (_, call) in CASES.items()}),
        (CASES_SCRIPT, {name: args for name, (args, _) in CASES.items()}),
    ]
    with ThreadPoolExecutor(2) as pool:
        done = pool.map(
            lambda script: subprocess.run(
                [sys.executable, "-c", script[0], json.dumps(script[1])],
                cwd=folder,
                capture_output=True,
                text=True,
                check=True,
            ),
            scripts,
        )
        api, commands = (json.loads(result.stdout) for result in done)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, nothing left
    return commands, api


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_command_and_the_api_refuse_alike_before_torch(
    name: str, outcomes: tuple[dict[str, Outcome], dict[str, list]]
) -> None:
    commands, api = outcomes
    code, stdout, stderr, imported = commands[name]
    assert code == 2 and stdout == "", (stdout, stderr)
    assert not imported, f"nnviz {CASES[name][0]} imported torch before refusing"
    (line,) = stderr.splitlines()
    error, api_imported = api[name]
    assert error is not None, f"{CASES[name][1]} raised nothing"
    _kind, _, message = error.partition(": ")
    assert line == f"nnviz: error: {' '.join(message.split())}"
    assert not api_imported, f"{CASES[name][1]} imported torch before refusing"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "d.txt"], "d.txt: a diff has no table of modules"),
        (["-o", "afile/d.pdf"], "cannot write afile/d.pdf: a file is in the way of its folder"),
        (["--key-map", "afile/m.json"], "cannot write afile/m.json: a file is in the way"),
    ],
    ids=["table", "drawing", "key_map"],
)
def test_nnviz_diff_checks_its_outputs_before_tracing(
    folder: Path, args: list[str], message: str
) -> None:
    result = _cli(["diff", "resnet18", "resnet34", *args], folder)
    assert result.returncode == 2 and result.stdout == "torch imported: False\n", result.stderr
    assert result.stderr.startswith(f"nnviz: error: {message}")


def test_a_misspelt_engine_is_refused_before_tracing(folder: Path, tmp_path: Path) -> None:
    line = "unknown Graphviz engine 'bogus'; use one of embedded, system"
    for args in (["resnet18"], ["diff", "resnet18", "resnet34", "-o", "d.svg"]):
        result = _cli(args, folder, env={**os.environ, "NNVIZ_ENGINE": "bogus"})
        assert result.stderr == f"nnviz: error: {line}\n"
        assert result.returncode == 2 and result.stdout == "torch imported: False\n"
    with pytest.raises(nnviz.RenderError, match=line):
        nnviz.draw("resnet19", tmp_path / "r.svg", engine="bogus")


def test_a_misspelt_model_suggests_names(
    outcomes: tuple[dict[str, subprocess.CompletedProcess[str]], dict[str, list]],
) -> None:
    error, _ = outcomes[1]["misspelt_model"]
    assert error.startswith("ModelSpecError: unknown model 'resnet19'")
    assert "did you mean resnet18" in error


def test_json_beside_the_drawing_is_the_snapshot_nnviz_save_writes(
    folder: Path, tmp_path: Path
) -> None:
    result = run_nnviz("resnet18", "-j", "-o", str(tmp_path / "r.svg"), cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.svg").read_text().startswith("<?xml")
    expected = nnviz.save(traced("resnet18"), tmp_path / "saved.json").read_bytes()
    assert (tmp_path / "r.json").read_bytes() == expected
    # with -l the snapshot is the selection, never collapsed by -d
    drawn = tmp_path / "l.dot"
    result = run_nnviz("good.json", "-l", "layer1", "-d", "1", "-j", "-o", str(drawn), cwd=folder)
    assert result.returncode == 0, result.stderr
    selected = transform.select(nnviz.load(folder / "good.json"), "layer1")
    expected = nnviz.save(selected, tmp_path / "selected.json").read_bytes()
    assert (tmp_path / "l.json").read_bytes() == expected


@pytest.fixture(scope="module")
def changed() -> nnviz.GraphDiff:
    return nnviz.diff(traced("resnet18"), traced("resnet18", num_classes=10))


@pytest.mark.parametrize(
    "keywords",
    [{"depth": 1}, {"depth": 2}, {"layer": "layer1"}, {"collapse": ["layer1"]}],
    ids=lambda k: next(iter(k)),
)
def test_a_diff_drawing_refuses_what_only_a_graph_drawing_honours(
    changed: nnviz.GraphDiff, tmp_path: Path, keywords: dict[str, object]
) -> None:
    (key,) = keywords
    with pytest.raises(nnviz.RenderError, match=rf"cannot draw a GraphDiff with {key}: "):
        nnviz.draw(changed, tmp_path / "d.svg", **keywords)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_graph_drawing_refuses_context_and_a_diff_drawing_honours_it(
    changed: nnviz.GraphDiff, tmp_path: Path
) -> None:
    with pytest.raises(nnviz.RenderError, match="cannot draw a Graph with context: "):
        nnviz.draw(traced("resnet18"), tmp_path / "g.dot", context=1)
    tight = nnviz.draw(changed, tmp_path / "tight.dot", context=0).read_text()
    wide = nnviz.draw(changed, tmp_path / "wide.dot", context=-1).read_text()
    assert tight.count("->") < wide.count("->")
    default = nnviz.draw(changed, tmp_path / "default.dot").read_text()
    assert default == nnviz.draw(changed, tmp_path / "three.dot", context=3).read_text()


def test_a_diff_drawing_takes_the_drawing_options(folder: Path, tmp_path: Path) -> None:
    snapshot.save(traced("resnet18", num_classes=10), tmp_path / "ten.json")
    args = ["diff", "good.json", str(tmp_path / "ten.json"), "-q", "--engine", "system"]
    wide, plain = tmp_path / "wide.dot", tmp_path / "plain.dot"
    assert run_nnviz(*args, "-o", str(wide), "-S", "rankdir=LR", cwd=folder).returncode == 1
    assert run_nnviz(*args, "-o", str(plain), cwd=folder).returncode == 1
    assert "rankdir=LR" in wide.read_text() and "rankdir=LR" not in plain.read_text()
