"""Where a test's snapshots live: test node → `__nnviz_snapshots__/<module>/<test>[.<name>].json`.

Layout users may rely on (in `tests/__nnviz_snapshots__/`, beside the test file):

    tests/test_models.py::test_resnet           test_models/test_resnet.json
    tests/test_models.py::test_resnet[depth2]   test_models/test_resnet[depth2].json
    tests/test_models.py::TestZoo::test_vit     test_models/TestZoo.test_vit.json
    nnviz_snapshot(model, name="encoder")       test_models/test_resnet.encoder.json
    2nd and 3rd unnamed call in one test        test_models/test_resnet.1.json, .2.json

Every name part is made file-system safe (only letters, digits and `_-.[]=+,@`; anything else
becomes `_`; overlong names are shortened with a hash so they stay unique).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_DIR = "__nnviz_snapshots__"
SUFFIX = ".json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-.\[\]=+,@]")
_MAX_NAME = 120


def safe_name(text: str) -> str:
    """`text` as a portable file-name part: unsafe characters become `_`, length is capped."""
    name = _UNSAFE.sub("_", text).strip(".") or "_"
    if len(name) > _MAX_NAME:
        # Keep a readable prefix; the hash keeps two long, similar ids apart.
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
        name = f"{name[: _MAX_NAME - 11]}-{digest}"
    return name


@dataclass(frozen=True)
class TestLocation:
    """One collected test and the folder and base name its snapshots use."""

    nodeid: str
    """pytest's node id, e.g. `tests/test_models.py::test_resnet[depth2]`."""
    folder: Path
    """`<test file's folder>/__nnviz_snapshots__/<test module>/`."""
    base: str
    """The test's part of the file name: `test_resnet[depth2]`, `TestZoo.test_vit`."""

    def snapshot(self, name: str | None = None, index: int = 0) -> Path:
        """The file of one `nnviz_snapshot` call: named, or the `index`-th unnamed call."""
        if name is not None:
            return self.folder / f"{self.base}.{safe_name(name)}{SUFFIX}"
        suffix = f".{index}" if index else ""
        return self.folder / f"{self.base}{suffix}{SUFFIX}"

    def owns(self, filename: str) -> bool:
        """Whether a file name in `folder` is one of this test's snapshots."""
        return filename.endswith(SUFFIX) and (
            filename == self.base + SUFFIX or filename.startswith(self.base + ".")
        )


def locate(nodeid: str, test_file: Path) -> TestLocation:
    """The snapshot location of the test `nodeid` defined in `test_file`."""
    parts = nodeid.split("::")[1:] or [nodeid]
    test_name, bracket, param = parts[-1].partition("[")
    scope = [*parts[:-1], test_name]
    base = ".".join(safe_name(p) for p in scope)
    if bracket:
        base += f"[{safe_name(param.removesuffix(']'))}]"
    folder = test_file.parent / SNAPSHOT_DIR / safe_name(test_file.stem)
    return TestLocation(nodeid, folder, base)


def relative(path: Path, base: Path) -> str:
    """`path` relative to `base` in POSIX form, `..` allowed (the absolute path on another
    drive): the one spelling of paths in report.json, messages and annotations."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:
        return path.as_posix()
