"""A sharded snapshot suite at scale: ~200 real models run whole, then as 4 shards, merged.

Builds a throw-away project whose tests snapshot every torchvision model (`weights=None`, on
meta), ~70 timm families (`pretrained=False`) and ~20 HF transformers from small configs, split
over 4 test files; records the snapshots (`--nnviz-update`, with xdist: setup, not measured);
plants one drift (resnet34's snapshot replaced by resnet18's), one missing snapshot and one
unused file; then measures

- the whole suite in one process (`pytest tests`),
- the 4 shards (`pytest tests/test_zoo_<i>.py --nnviz-shard`) as 4 processes at once,
- `nnviz report merge` of the 4 shards (wall time of the command), and in-process the merge of
  200 one-model shard reports cut from the whole run's record (the "many machines" extreme),
- the merged report's size, and whether it equals the whole run's (minus `run.paths/shards`).

    nice -n 10 python bench/shards.py                 # everything (~25 min on 2 shared cores)
    python bench/shards.py --limit 40                 # a smaller set, for a quick look
    python bench/shards.py --json bench/shards-results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SHARDS = 4
TIMM = [
    "coat_lite_small",
    "convit_small",
    "convnext_atto",
    "convnextv2_atto",
    "cs3darknet_focus_s",
    "cspnext_s",
    "davit_small",
    "deit3_small_patch16_224",
    "ecaresnet26t",
    "edgenext_small",
    "efficientnet_b0",
    "efficientnetv2_rw_s",
    "efficientvit_b0",
    "eva02_small_patch14_224",
    "fasternet_s",
    "fbnetc_100",
    "flexivit_small",
    "focalnet_small_lrf",
    "gcvit_small",
    "gernet_s",
    "ghostnet_050",
    "ghostnetv2_100",
    "hgnet_small",
    "hgnetv2_b0",
    "hiera_small_224",
    "hrnet_w18_small",
    "inception_next_atto",
    "lcnet_050",
    "legacy_seresnet18",
    "mambaout_femto",
    "maxvit_nano_rw_256",
    "mixnet_s",
    "mnasnet_050",
    "mobilenet_edgetpu_100",
    "mobilenetv1_100",
    "mobilevit_s",
    "mobilevitv2_050",
    "mvitv2_small",
    "nest_small",
    "nextvit_small",
    "nf_ecaresnet26",
    "pvt_v2_b0",
    "rdnet_small",
    "repghostnet_050",
    "repvgg_b0",
    "resnet18",
    "resnet18d",
    "resnet26d",
    "resnet26t",
    "rexnet_100",
    "rexnetr_100",
    "semnasnet_050",
    "sequencer2d_s",
    "seresnet18",
    "skresnet18",
    "spnasnet_100",
    "swiftformer_s",
    "swin_s3_small_224",
    "swinv2_cr_small_224",
    "tf_efficientnet_b0",
    "twins_pcpvt_small",
    "visformer_small",
    "vit_base_resnet26d_224",
    "vitamin_small_224",
    "xcit_nano_12_p8_224",
    "crossvit_small_240",
    "coatnet_nano_cc_224",
    "lambda_resnet26rpt_256",
    "iformer_s",
    "lowformer_b0",
]
"""One small variant per timm family."""
HF_DECODERS = [
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "phi",
    "opt",
    "gpt_neox",
    "falcon",
    "stablelm",
    "olmo",
    "granite",
    "starcoder2",
]
HF_ENCODERS = ["roberta", "distilbert", "albert", "electra"]
TOKENS = "input_ids:tensor1x16:int64"


# --- the models (imported by the generated tests) ---------------------------------------------


def names() -> list[str]:
    """Every model of the suite, as `family:name`."""
    from nnviz.models import torchvision_names

    zoo = _zoo()
    out = [f"torchvision:{n}" for n in torchvision_names()]
    out += [f"timm:{n}" for n in TIMM]
    out += [f"hf:{n}" for n in zoo.TRANSFORMERS]
    out += [f"hf:{n}" for n in (*HF_DECODERS, *HF_ENCODERS)]
    return out


def build(spec: str) -> tuple[Any, str | None]:
    """The model of `family:name` (or a MODEL spec string nnviz builds on meta) and its input."""
    family, name = spec.split(":", 1)
    if family == "torchvision":
        return name, None
    if family == "timm":
        import timm

        return timm.create_model(name, pretrained=False), None
    zoo = _zoo()
    if name in zoo.TRANSFORMERS:
        return getattr(zoo, name)(), zoo.TRANSFORMERS[name]
    from transformers import AutoConfig, AutoModel

    small = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    small |= dict(intermediate_size=128, max_position_embeddings=64, num_key_value_heads=2)
    small |= dict(ffn_dim=128, word_embed_proj_dim=64, dim=64, hidden_dim=128, n_layers=2)
    small |= dict(n_heads=4, embedding_size=64)
    return AutoModel.from_config(AutoConfig.for_model(name, **small)), TOKENS


def _zoo() -> Any:
    sys.path.insert(0, str(HERE.parent))
    import zoo

    return zoo


# --- the project ------------------------------------------------------------------------------

TEST = """
import pytest
import shards

NAMES = {names!r}


@pytest.mark.parametrize("spec", NAMES)
def test_model(nnviz_snapshot, spec):
    model, inputs = shards.build(spec)
    nnviz_snapshot(model, inputs=inputs)
"""


def make_project(folder: Path, models: list[str]) -> None:
    tests = folder / "tests"
    tests.mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n", encoding="utf-8")
    (tests / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(HERE.parent)!r})\n", encoding="utf-8"
    )
    for i in range(SHARDS):
        part = models[i::SHARDS]
        (tests / f"test_zoo_{i}.py").write_text(TEST.format(names=part), encoding="utf-8")


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    return time.perf_counter() - start, done.returncode


def plant(folder: Path, models: list[str]) -> dict[str, str]:
    """One drift, one missing snapshot, one unused file."""
    snaps = folder / "tests" / "__nnviz_snapshots__"
    files = {p.stem: p for p in snaps.rglob("*.json")}
    drift = next(p for s, p in files.items() if "resnet34]" in s)
    shutil.copyfile(next(p for s, p in files.items() if "torchvision_resnet18]" in s), drift)
    missing = next(p for s, p in files.items() if "hf_bert]" in s)
    missing.unlink()
    unused = drift.parent / "test_gone.json"
    shutil.copyfile(drift, unused)
    return {"drift": drift.name, "missing": missing.name, "unused": unused.name}


def run_shards(folder: Path) -> tuple[float, list[float]]:
    start = time.perf_counter()
    procs = []
    for i in range(SHARDS):
        cmd = pytest_cmd(f"tests/test_zoo_{i}.py", "--nnviz-shard", "--nnviz-artifacts", f"s{i}")
        procs.append((time.perf_counter(), subprocess.Popen(cmd, cwd=folder, **_quiet())))
    walls = []
    for began, proc in procs:
        proc.wait()
        walls.append(time.perf_counter() - began)
    return time.perf_counter() - start, walls


def _quiet() -> dict[str, Any]:
    return {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def merge_many(folder: Path, count: int) -> float:
    """Seconds to merge `count` one-test shard reports cut from the whole run's record."""
    from nnviz import reportmerge
    from nnviz.driftreport import DriftReport, Run

    whole = DriftReport.load(folder / "whole" / "report.json")
    assert whole.run is not None
    tests = sorted(whole.run.tests)
    parts = [tests[i::count] for i in range(count)]
    base = folder / "many"
    for i, part in enumerate(parts):
        mine = set(part)
        run = Run(
            commit=whole.run.commit,
            tests={n: whole.run.tests[n] for n in part},
            deselected=[n for n in tests if n not in mine],
            checks=[c for c in whole.run.checks if c.nodeid in mine],
            unclaimed=whole.run.unclaimed if i == 0 else [],
            kept=whole.run.kept if i == 0 else [],
        )
        drifts = [d for d in whole.drifts if d.nodeid in mine]
        report = whole.model_copy(update={"run": run, "drifts": drifts, "unused": []})
        report.save(base / f"s{i}" / "report.json")
        for drift in drifts:
            for rel in drift.artifacts.values():
                source = folder / "whole" / rel
                if source.is_file():
                    (base / f"s{i}" / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, base / f"s{i}" / rel)
    start = time.perf_counter()
    shards = reportmerge.load(sorted(base.iterdir()))
    merged = reportmerge.merge(shards)
    reportmerge.write(shards, merged, folder / "many-merged")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, help="Only the first N models (spread by family).")
    parser.add_argument("--json", help="Write the figures here.")
    parser.add_argument("--keep", help="Build the project in this folder and keep it.")
    parser.add_argument(
        "--reuse", action="store_true", help="With --keep: the folder is already recorded."
    )
    parser.add_argument(
        "--whole-workers",
        type=int,
        default=1,
        help="pytest-xdist workers for the whole run (2: one 2-core machine as CI runs it).",
    )
    args = parser.parse_args(argv)
    models = names()
    if args.limit:
        models = models[:: max(1, len(models) // args.limit)][: args.limit]
    for name in ("torchvision:resnet18", "torchvision:resnet34", "hf:bert"):
        if name not in models:
            models.append(name)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="nnviz-shards-"))
    env_note = f"{len(models)} models, {SHARDS} shards, {os.cpu_count()} cores"
    print(f"nnviz shard bench: {env_note} in {folder}", flush=True)
    record = 0.0
    if args.reuse and (folder / "tests").is_dir():
        print("reusing the recorded and planted project", flush=True)
    else:
        make_project(folder, models)
        record, _ = timed(pytest_cmd("--nnviz-update", "-n", "2"), folder)
        planted = plant(folder, models)
        print(f"recorded in {record:.0f} s; planted {planted}", flush=True)
    workers = ["-n", str(args.whole_workers)] if args.whole_workers > 1 else []
    whole, status = timed(pytest_cmd("tests", "--nnviz-artifacts", "whole", *workers), folder)
    print(f"whole (xdist workers: {args.whole_workers}): {whole:.1f} s (exit {status})", flush=True)
    wall, walls = run_shards(folder)
    print(f"4 shards at once: {wall:.1f} s (each {', '.join(f'{w:.0f}' for w in walls)})")
    outs = [f"s{i}" for i in range(SHARDS)]
    cmd = [sys.executable, "-m", "nnviz", "report", "merge", *outs, "-o", "merged"]
    merge, status = timed(cmd, folder)
    figures = _figures(folder, models, record, whole, wall, walls, merge, args.whole_workers)
    figures["merge_200_seconds"] = merge_many(folder, 200)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if figures["merged_equals_whole"] else 1


def _figures(
    folder: Path,
    models: list[str],
    record: float,
    whole: float,
    wall: float,
    walls: list[float],
    merge: float,
    whole_workers: int,
) -> dict[str, Any]:
    from nnviz.driftreport import DriftReport

    reports = {k: DriftReport.load(folder / k / "report.json") for k in ("whole", "merged")}
    docs = {k: r.model_dump(mode="json") for k, r in reports.items()}
    for doc in docs.values():
        doc["run"].pop("paths")
        doc["run"].pop("shards")
    summary = reports["merged"].summary
    return {
        "models": len(models),
        "shards": SHARDS,
        "record_seconds_xdist2": round(record, 1),
        "whole_seconds": round(whole, 1),
        "whole_xdist_workers": whole_workers,
        "shards_wall_seconds": round(wall, 1),
        "shard_seconds": [round(w, 1) for w in walls],
        "speedup_whole_over_shards": round(whole / wall, 2),
        "merge_command_seconds": round(merge, 2),
        "merged_report_bytes": (folder / "merged" / "report.json").stat().st_size,
        "whole_report_bytes": (folder / "whole" / "report.json").stat().st_size,
        "merged_summary": summary.model_dump(),
        "merged_unused": reports["merged"].unused,
        "merged_equals_whole": docs["merged"] == docs["whole"],
    }


if __name__ == "__main__":
    raise SystemExit(main())
