"""Never a CPU copy that cannot fit, and meta kernels stricter than the real ones (issue 27).

A model on the meta device that cannot run there (`.item()`) is refused in one line before any
CPU copy that would exceed the memory limit; the experts' grouped matmul of mixture-of-experts
models runs on meta in float32 (its meta kernel asks for bfloat16)."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import nnviz
from nnviz.tracers import budget

NEEDS_ITEM = textwrap.dedent(
    """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=4096):
            super().__init__()
            self.proj = nn.Linear(width, width)

        def forward(self, x):
            scale = x.abs().amax().item()  # a real value: meta tensors have none
            return self.proj(x) / max(scale, 1.0)
    """
)


BUILDS_WITH_ITEM = textwrap.dedent(
    """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=4096):
            super().__init__()
            self.proj = nn.Linear(width, width)
            self.gain = 1.0 + float(self.proj.bias.abs().max().item())  # no value on meta

        def forward(self, x):
            return self.proj(x) * self.gain
    """
)


class ScaledByItem(nn.Module):
    """fx traces `.item()` as a call; running the traced graph on meta fails at it."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * x.sum().item()


def test_a_copy_above_the_limit_is_refused_in_one_line_and_nothing_is_allocated(tmp_path):
    """Acceptance 2: 4.3 GB of weights, `--memory-limit 100MB`: exit 2, one line naming the op
    that failed on meta and what to do, no output, and the process never grew by the weights."""
    (tmp_path / "needs_item.py").write_text(NEEDS_ITEM)
    width = 32768  # 32768² float32 weights: 4.3 GB, which a CPU rebuild would initialise
    command = [sys.executable, "-m", "nnviz", "needs_item.py:Net", "-a", f"width={width}"]
    command += ["-i", f"tensor1x{width}", "--memory-limit", "100MB", "-o", "net.json"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    err = done.stderr
    assert done.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnviz: error: Net cannot run on the meta")
    assert "Tensor.item" in lines[0] and "4.3 GB" in lines[0] and "100.0 MB" in lines[0]
    assert "--memory-limit" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "net.json").exists()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb * 1024 < 4.3e9 / 2  # a rebuild would have touched all 4.3 GB


def test_a_cpu_build_above_the_limit_is_refused_before_it_allocates(tmp_path):
    """A constructor that needs a real value fails on meta both ways, so the model is built on
    the CPU as a last resort, where its size is unknown until built: every new tensor is
    counted before it is allocated, and the 4.3 GB weight is refused in one line."""
    (tmp_path / "builds_with_item.py").write_text(BUILDS_WITH_ITEM)
    command = [sys.executable, "-m", "nnviz", "builds_with_item.py:Net", "-a", "width=32768"]
    command += ["--memory-limit", "100MB", "-o", "net.json"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    err = done.stderr
    assert done.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnviz: error: builds_with_item.py:Net cannot be built on the meta")
    assert "item" in lines[0] and "4.3 GB" in lines[0] and "100.0 MB" in lines[0]
    assert "--memory-limit" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "net.json").exists()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb * 1024 < 4.3e9 / 2  # the weights were never initialised


def test_within_the_limit_the_cpu_build_traces(tmp_path, monkeypatch):
    (tmp_path / "builds_with_item.py").write_text(BUILDS_WITH_ITEM)
    monkeypatch.chdir(tmp_path)
    graph = nnviz.trace("builds_with_item.py:Net", args={"width": 64}, memory_limit="1MB")
    assert graph.modules["proj"].parameters == {"weight": (64, 64), "bias": (64,)}
    with pytest.raises(nnviz.NNVizError, match=r"at least 16\.4 kB, more than the memory limit"):
        nnviz.trace("builds_with_item.py:Net", args={"width": 64}, memory_limit="10kB")


def test_the_fx_shape_run_refuses_too_naming_the_node(tmp_path):
    with torch.device("meta"):
        model = ScaledByItem()
    with pytest.raises(nnviz.TraceError) as caught:
        nnviz.trace(model, inputs="tensor1x256", memory_limit="100kB")
    message = str(caught.value)
    assert "\n" not in message
    assert "at item" in message and "Tensor.item" in message, message
    assert "263.2 kB" in message and "memory limit of 100.0 kB" in message


def test_within_the_limit_the_cpu_copy_gives_the_shapes():
    with torch.device("meta"):
        model = ScaledByItem()
    graph = nnviz.trace(model, inputs="tensor1x256", memory_limit="1GB")
    assert graph.node("proj").spec == {"$tensor": {"shape": [1, 256], "dtype": "float32"}}


def test_the_fixture_takes_a_memory_limit(pytester):
    from support import run

    pytester.makepyfile(
        test_limited_model="""
        import torch
        from test_budget_model import ScaledByItem

        def test_model(nnviz_snapshot):
            with torch.device("meta"):
                model = ScaledByItem()
            nnviz_snapshot(model, inputs="tensor1x256", memory_limit="100kB")
        """
    )
    pytester.makepyfile(
        test_budget_model="from torch import nn\n" + textwrap.dedent(_source(ScaledByItem))
    )
    result = run(pytester, "-q", "-p", "no:cacheprovider", "test_limited_model.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nnviz: ScaledByItem cannot run on the meta device*"])


def _source(cls: type) -> str:
    import inspect

    return "import torch\n" + inspect.getsource(cls)


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("1.5g", 15 * 10**8), ("1000", 1000)],
)
def test_sizes(text, size):
    assert budget.parse_size(text) == size


def test_a_malformed_limit_is_one_line(tmp_path):
    from support import run_nnviz

    done = run_nnviz("resnet18", "--memory-limit", "lots", "-o", "x.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nnviz: error: memory limit 'lots': give a size such as 8GB, 512MiB or 1000000 (bytes)"
    ]


def test_grouped_mm_runs_on_meta_in_float32():
    """torch._grouped_mm's meta kernel asks for bfloat16; the CPU kernel takes float32."""
    from nnviz.tracers import lenient

    x = torch.empty(16, 64, device="meta")
    w = torch.empty(8, 64, 32, device="meta")
    offsets = torch.empty(8, dtype=torch.int32, device="meta")
    with pytest.raises(RuntimeError):
        torch._grouped_mm(x, w, offs=offsets)
    out = lenient.call(torch._grouped_mm, (x, w), {"offs": offsets})
    assert out.shape == (16, 32) and out.dtype == torch.float32 and out.device.type == "meta"


def test_initialising_lazy_modules_on_a_cpu_build_is_refused_too(tmp_path):
    (tmp_path / "lazy_net.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.big = nn.Linear(4096, 4096)
                    self.lazy = nn.LazyLinear(8)

                def forward(self, x):
                    return self.lazy(self.big(x) * x.sum().item())
            """
        )
    )
    from support import run_nnviz

    args = ("lazy_net.py:Net", "-i", "tensor1x4096", "--memory-limit", "10MB", "-o", "n.json")
    done = run_nnviz(*args, cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "Tensor.item()" in line and "67.1 MB" in line and "memory limit of 10.0 MB" in line
    assert not (tmp_path / "n.json").exists()
