"""`nnviz MODEL ...` drawing options, run as real subprocesses on a PATH without system Graphviz."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import run_nnviz, torch_blocker, traced

import nnviz
from nnviz.transform import select

SVG = "{http://www.w3.org/2000/svg}"


def env_without_dot(**extra: str) -> dict[str, str]:
    """The environment of a machine without Graphviz: no directory on PATH holds `dot`."""
    env = {k: v for k, v in os.environ.items() if k != "NNVIZ_ENGINE"}
    dirs = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in dirs if d and not (Path(d) / "dot").exists())
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet18.json (full graph) and resnet18_shapes.json (traced with -i default): drawing a
    snapshot needs no torch, which keeps these subprocess tests fast."""
    folder = tmp_path_factory.mktemp("snapshots")
    nnviz.save(traced("resnet18"), folder / "resnet18.json")
    nnviz.save(traced("resnet18", inputs="default"), folder / "resnet18_shapes.json")
    return folder


def nodes_in(svg: Path) -> list[str]:
    root = ET.parse(svg).getroot()
    return [g.get("id", "") for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


def test_default_output_is_model_pdf_and_a_clean_run_is_silent(tmp_path: Path) -> None:
    done = run_nnviz("resnet18", cwd=tmp_path, env=env_without_dot())
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "resnet18.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["resnet18.pdf"]


def test_svg_and_png_by_extension_into_new_folders(snapshots: Path, tmp_path: Path) -> None:
    model = str(snapshots / "resnet18.json")
    for name in ("out/deep/r.svg", "out/r.png"):
        done = run_nnviz(model, "-o", name, cwd=tmp_path, env=env_without_dot())
        assert (done.returncode, done.stderr) == (0, "")
    assert len(nodes_in(tmp_path / "out/deep/r.svg")) == 17
    assert (tmp_path / "out/r.png").read_bytes().startswith(b"\x89PNG")


def test_depth_collapse_and_layer(snapshots: Path, tmp_path: Path) -> None:
    model = str(snapshots / "resnet18.json")
    env = env_without_dot()
    run_nnviz(model, "-d", "1", "-o", "d1.svg", cwd=tmp_path, env=env)
    assert len(nodes_in(tmp_path / "d1.svg")) == 13
    run_nnviz(
        model, "-d", "-1", "-c", "layer1", "-c", "layer4", "-o", "c.svg", cwd=tmp_path, env=env
    )
    ids = nodes_in(tmp_path / "c.svg")
    assert "layer1" in ids and "layer4" in ids and "layer2.0.conv1" in ids
    assert len(ids) == 71 - 14 - 16 + 2  # layer1's 14 ops and layer4's 16 become one node each
    done = run_nnviz(model, "-l", "layer2.0", "-S", "rankdir=LR", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "resnet18_layer2-0.pdf").read_bytes().startswith(b"%PDF")


def test_snapshots_hold_the_full_graph_unless_a_layer_is_selected(
    snapshots: Path, tmp_path: Path
) -> None:
    model = str(snapshots / "resnet18.json")
    env = env_without_dot()
    run_nnviz(model, "-d", "1", "-c", "layer1", "-o", "full.json", cwd=tmp_path, env=env)
    assert nnviz.load(tmp_path / "full.json") == traced("resnet18")
    run_nnviz(model, "-d", "1", "-j", "-o", "pic.svg", cwd=tmp_path, env=env)
    assert nnviz.load(tmp_path / "pic.json") == traced("resnet18")
    run_nnviz(model, "-l", "layer2.0", "-d", "1", "-o", "layer.json", cwd=tmp_path, env=env)
    assert nnviz.load(tmp_path / "layer.json") == select(traced("resnet18"), "layer2.0")


def test_two_drawings_are_byte_identical(snapshots: Path, tmp_path: Path) -> None:
    model = str(snapshots / "resnet18_shapes.json")
    for seed in ("1", "2"):
        env = env_without_dot(PYTHONHASHSEED=seed)
        for ext in ("dot", "svg"):
            done = run_nnviz(model, "-d", "-1", "-o", f"{seed}.{ext}", cwd=tmp_path, env=env)
            assert done.returncode == 0, done.stderr
    assert (tmp_path / "1.dot").read_bytes() == (tmp_path / "2.dot").read_bytes()
    assert (tmp_path / "1.svg").read_bytes() == (tmp_path / "2.svg").read_bytes()


def test_shapes_on_edges_with_input_default(tmp_path: Path) -> None:
    done = run_nnviz(
        "resnet18", "-i", "default", "-o", "r.svg", cwd=tmp_path, env=env_without_dot()
    )
    assert (done.returncode, done.stderr) == (0, "")
    root = ET.parse(tmp_path / "r.svg").getroot()
    labels = {
        g.get("id"): "".join(t.text or "" for t in g.iter(f"{SVG}text"))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "edge"
    }
    assert labels["edge:input:x->conv1"] == "[1, 3, 224, 224]"
    assert labels["edge:layer3.1->layer4.0"] == "[1, 256, 14, 14]"
    assert labels["edge:fc->output"] == "[1, 1000]"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-S", "nonsense=1"], "nnviz: error: unknown style key 'nonsense'; valid keys: fontname"),
        (["-S", "node_title_font_size=big"], "nnviz: error: bad value 'big' for style key"),
        (["-o", "x.bmp"], "nnviz: error: x.bmp: unknown output format '.bmp'; use one of .pdf"),
        (["-l", "layer9"], "nnviz: error: layer 'layer9': no such module in resnet18; did you"),
        (["-c", "fetaures"], "nnviz: error: collapse prefix 'fetaures': no such module"),
        (["-d", "0"], "nnviz: error: depth 0: use -1"),
    ],
)
def test_bad_options_fail_with_one_line(
    snapshots: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = run_nnviz(str(snapshots / "resnet18.json"), *args, cwd=tmp_path, env=env_without_dot())
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xdg-open is the Linux opener")
def test_show_opens_the_default_app_or_says_it_cannot(snapshots: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened.txt"}\n')
    opener.chmod(0o755)
    env = env_without_dot()
    env["PATH"] = os.pathsep.join([str(bin_dir), *env["PATH"].split(os.pathsep)])
    model = str(snapshots / "resnet18.json")
    done = run_nnviz(model, "-s", "-o", "r.svg", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    opened = tmp_path / "opened.txt"
    for _ in range(50):  # the opener runs detached: wait for its line, not only its file
        if opened.exists() and opened.read_text().endswith("\n"):
            break
        subprocess.run(["sleep", "0.1"], check=False)
    assert opened.read_text().strip() == "r.svg"

    env["PATH"] = os.pathsep.join(
        d for d in env["PATH"].split(os.pathsep) if not (Path(d) / "xdg-open").exists()
    )
    done = run_nnviz(model, "-s", "-o", "r.svg", cwd=tmp_path, env=env)
    assert done.returncode == 0
    assert (
        done.stderr
        == "nnviz: cannot open r.svg: `xdg-open` is not available; open the file yourself\n"
    )
    assert run_nnviz(model, "-s", "-q", "-o", "r.svg", cwd=tmp_path, env=env).stderr == ""


def test_progress_only_on_a_terminal(snapshots: Path, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nnviz", str(snapshots / "resnet18.json"), "-o", "r.svg"],
            cwd=tmp_path,
            env=env_without_dot(),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=300,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    seen = b"".join(chunks).decode()
    assert done.returncode == 0
    assert "nnviz: laying out 71 nodes" in seen and "nnviz: wrote r.svg" in seen


def test_engine_system(snapshots: Path, tmp_path: Path) -> None:
    model = str(snapshots / "resnet18_shapes.json")
    done = run_nnviz(
        model, "--engine", "system", "-o", "s.svg", cwd=tmp_path, env=env_without_dot()
    )
    assert done.returncode == 2
    assert "system Graphviz `dot` is not on PATH" in done.stderr
    if shutil.which("dot") is None:
        pytest.skip("no system Graphviz (`.ci/run` installs it)")
    env = {k: v for k, v in os.environ.items() if k != "NNVIZ_ENGINE"}
    done = run_nnviz(model, "--engine", "system", "-o", "s.svg", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    run_nnviz(model, "-o", "e.svg", cwd=tmp_path, env=env_without_dot())
    assert nodes_in(tmp_path / "s.svg") == nodes_in(tmp_path / "e.svg")
    env["NNVIZ_ENGINE"] = "system"
    done = run_nnviz(model, "-o", "s2.svg", cwd=tmp_path, env=env)
    assert (tmp_path / "s2.svg").read_bytes() == (tmp_path / "s.svg").read_bytes()


def test_drawing_a_snapshot_never_imports_torch(snapshots: Path, tmp_path: Path) -> None:
    path = [str(torch_blocker(tmp_path)), os.environ.get("PYTHONPATH", "")]
    env = env_without_dot(PYTHONPATH=os.pathsep.join(path))
    model = str(snapshots / "resnet18_shapes.json")
    done = run_nnviz(model, "-d", "1", "-c", "layer1", "-o", "r.svg", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    done = run_nnviz(model, "-l", "layer2.0", "-o", "l.png", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, "")
