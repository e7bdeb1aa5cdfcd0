"""Model specs: torchvision names of every family, importable and file callables, `-a` values,
and construction on the meta device (no weight initialisation, exact parameter counts)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

import nnviz
from nnviz import models
from nnviz.errors import ModelBuildError, ModelSpecError


@pytest.mark.parametrize(
    ("text", "kind", "target", "attr", "name"),
    [
        ("resnet18", "torchvision", "resnet18", None, "resnet18"),
        ("pkg.mod:make", "package", "pkg.mod", "make", "make"),
        ("pkg.mod:Factory.build", "package", "pkg.mod", "Factory.build", "build"),
        ("path/to/file.py:Net", "file", "path/to/file.py", "Net", "Net"),
        ("C:/models/file.py:Net", "file", "C:/models/file.py", "Net", "Net"),
        ("runs/r18.json", "snapshot", "runs/r18.json", None, "r18"),
    ],
)
def test_specs_are_classified_without_importing(
    text: str, kind: str, target: str, attr: str | None, name: str
) -> None:
    spec = models.parse_spec(text)
    assert (spec.kind, spec.target, spec.attr, spec.name) == (kind, target, attr, name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty MODEL"),
        ("file.py", "name the callable too"),
        ("pkg:", "expected MODULE:CALLABLE"),
        (":make", "expected MODULE:CALLABLE"),
    ],
)
def test_malformed_specs(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        models.parse_spec(text)


def test_misspelt_names_get_suggestions() -> None:
    with pytest.raises(ModelSpecError, match=r"unknown model 'resnet19'.*did you mean resnet18"):
        models.build(models.parse_spec("resnet19"))


def test_arguments_are_literals_or_text() -> None:
    assert models.parse_arguments(
        ["num_classes=10", "dropout=0.5", "sizes=(3, 3)", "flag=True", "name=small", "none=None"]
    ) == {
        "num_classes": 10,
        "dropout": 0.5,
        "sizes": (3, 3),
        "flag": True,
        "name": "small",
        "none": None,
    }
    assert models.parse_arguments(["x=__import__('os')"]) == {"x": "__import__('os')"}
    with pytest.raises(ModelSpecError, match="KEY=VALUE"):
        models.parse_arguments(["num_classes"])
    with pytest.raises(ModelSpecError, match="KEY=VALUE"):
        models.parse_arguments(["1x=3"])


def test_constructor_arguments_reach_the_model() -> None:
    model = nnviz.load_model("resnet18", {"num_classes": 10})
    assert model.fc.out_features == 10
    with pytest.raises(ModelBuildError, match="unexpected keyword argument 'colour'"):
        nnviz.load_model("resnet18", {"colour": "red"})


def test_models_are_built_on_meta_with_exact_parameter_counts() -> None:
    meta = nnviz.load_model("resnet18")
    cpu = nnviz.load_model("resnet18", device="cpu")
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert {p.device.type for p in cpu.parameters()} == {"cpu"}
    assert sum(p.numel() for p in meta.parameters()) == 11_689_512
    assert sum(p.numel() for p in cpu.parameters()) == 11_689_512
    assert not meta.training


def test_vit_h_14_is_built_without_initialising_its_weights() -> None:
    nnviz.load_model("vit_b_32")  # imports and registry look-ups out of the measurement
    start = time.perf_counter()
    model = nnviz.load_model("vit_h_14")
    elapsed = time.perf_counter() - start
    assert sum(p.numel() for p in model.parameters()) == 632_045_800
    assert {p.device.type for p in model.parameters()} == {"meta"}
    # A CPU build spends ~9 s initialising 632M weights; on meta it takes well under a second.
    assert elapsed < 3.0, f"vit_h_14 took {elapsed:.1f}s to build"


def test_constructors_computing_with_torch_keep_parameters_on_meta() -> None:
    # regnet computes its stage widths with torch tensors, which cannot be read on meta.
    model = nnviz.load_model("regnet_y_128gf")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert sum(p.numel() for p in model.parameters()) == 644_812_894


def test_a_constructor_that_needs_real_values_falls_back_to_the_cpu(tmp_path: Path) -> None:
    source = tmp_path / "needs_values.py"
    source.write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.register_buffer('sizes', torch.tensor([2, 3]))\n"
        "        self.lin = nn.Linear(int(self.sizes.sum()), 4)  # reads a buffer's value\n"
        "    def forward(self, x):\n"
        "        return self.lin(x)\n"
    )
    model = nnviz.load_model(f"{source}:Net")
    assert model.lin.in_features == 5
    assert model.lin.weight.device.type == "cpu"


@pytest.mark.parametrize(
    "name",
    [
        "fasterrcnn_mobilenet_v3_large_fpn",  # detection, with weights_backbone
        "fcn_resnet50",  # segmentation
        "r3d_18",  # video
        "raft_small",  # optical flow
        "quantized_mobilenet_v3_large",  # quantized
    ],
)
def test_every_family_builds_on_meta_without_downloading(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = nnviz.load_model(name)
    expected = {
        "fasterrcnn_mobilenet_v3_large_fpn": 19_410_754,
        "fcn_resnet50": 32_957_013,
        "r3d_18": 33_371_472,
        "raft_small": 990_162,
        "quantized_mobilenet_v3_large": 5_483_032,
    }[name]
    assert sum(p.numel() for p in model.parameters()) == expected
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert list(tmp_path.iterdir()) == [], "nothing was downloaded"


def test_every_torchvision_family_is_listed() -> None:
    names = set(models.torchvision_names())
    for module in (tvm, tvm.detection, tvm.segmentation, tvm.video, tvm.optical_flow):
        assert set(tvm.list_models(module=module)) <= names
    assert set(tvm.list_models(module=tvm.quantization)) <= names


def test_package_callables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_models.py").write_text(
        "from torch import nn\n"
        "def small(width=4):\n"
        "    return nn.Sequential(nn.Linear(width, 2), nn.ReLU())\n"
        "def not_a_model():\n"
        "    return 42\n"
        "CONSTANT = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = nnviz.load_model("my_models:small", {"width": 8})
    assert model[0].in_features == 8
    graph = nnviz.trace("my_models:small", inputs="tensor1x4")
    assert graph.name == "small"
    assert graph.node("output").spec == {"$tensor": {"shape": [1, 2], "dtype": "float32"}}
    with pytest.raises(ModelBuildError, match=r"returned int, not a torch\.nn\.Module"):
        nnviz.load_model("my_models:not_a_model")
    with pytest.raises(ModelSpecError, match="is not callable"):
        nnviz.load_model("my_models:CONSTANT")
    with pytest.raises(ModelSpecError, match=r"has no 'smal'.*did you mean small"):
        nnviz.load_model("my_models:smal")
    with pytest.raises(ModelSpecError, match="cannot import 'no_such_models'"):
        nnviz.load_model("no_such_models:small")


def test_file_callables_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "net.py"
    good.write_text("from torch import nn\nclass Net(nn.Linear):\n    pass\n")
    assert isinstance(
        nnviz.load_model(f"{good}:Net", {"in_features": 2, "out_features": 3}), torch.nn.Linear
    )
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ModelBuildError, match=r"importing .*broken.py failed: RuntimeError: boom"):
        nnviz.load_model(f"{bad}:Net")
    with pytest.raises(ModelSpecError, match="no such file"):
        nnviz.load_model(f"{tmp_path / 'missing.py'}:Net")
