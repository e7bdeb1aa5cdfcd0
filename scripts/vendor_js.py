"""Refresh the vendored Graphviz-in-WebAssembly that the interactive HTML view inlines.

    python scripts/vendor_js.py                 # the pinned version below
    python scripts/vendor_js.py --version 1.30.0

Runs `npm pack @hpcc-js/wasm-graphviz@VERSION` (the npm registry, never a CDN), takes the ES
module build (`dist/index.js`, which carries the wasm as base64) and its licence, and writes
`nnviz/render/vendor/graphviz.js`, `LICENSE-hpcc-js-wasm` and `VERSION`. The module's final
`export{...}` statement becomes `var nnvizGraphviz = ...;` so the page can inline the library and
its own code as one `<script type="module">` (an inline module cannot be imported from).
Bump PINNED, run this, open a page (`nnviz resnet18 -o r.html`) and run tests/browser.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@hpcc-js/wasm-graphviz"
PINNED = "1.29.2"
VENDOR = Path(__file__).resolve().parent.parent / "nnviz" / "render" / "vendor"
_EXPORT = re.compile(r"export\s*\{([^}]*)\};?\s*(//# sourceMappingURL=\S+)?\s*$")


def rewrite(source: str) -> str:
    """The module without its export statement, its exports gathered in `nnvizGraphviz`."""
    match = _EXPORT.search(source)
    if match is None:
        raise SystemExit("vendor_js: no trailing export statement in dist/index.js")
    pairs = [part.strip().split(" as ") for part in match.group(1).split(",")]
    members = ",".join(f"{alias.strip()}:{local.strip()}" for local, alias in pairs)
    if "</script" in source.lower():
        raise SystemExit("vendor_js: the library contains '</script' and cannot be inlined")
    return source[: match.start()] + f"var nnvizGraphviz={{{members}}};\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=PINNED)
    version = parser.parse_args().version
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"{PACKAGE}@{version}"], cwd=tmp, check=True)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as archive:
            js = archive.extractfile("package/dist/index.js")
            licence = archive.extractfile("package/LICENSE")
            assert js is not None and licence is not None
            source, licence_text = js.read().decode("utf-8"), licence.read().decode("utf-8")
    VENDOR.mkdir(parents=True, exist_ok=True)
    (VENDOR / "graphviz.js").write_text(rewrite(source), encoding="utf-8")
    (VENDOR / "LICENSE-hpcc-js-wasm").write_text(licence_text, encoding="utf-8")
    (VENDOR / "VERSION").write_text(f"{PACKAGE}@{version}\n", encoding="utf-8")
    print(f"vendored {PACKAGE}@{version} into {VENDOR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
