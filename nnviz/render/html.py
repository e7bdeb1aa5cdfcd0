"""One self-contained interactive HTML page for a Graph or a GraphDiff: works offline.

The page inlines everything it needs: its view (the DOT fragments of `nnviz.render.htmlview`,
as JSON), its script and style, and Graphviz compiled to WebAssembly (`vendor/graphviz.js`,
`@hpcc-js/wasm-graphviz` at the version in `vendor/VERSION`, Apache-2.0, refreshed by
`scripts/vendor_js.py`). A Content-Security-Policy forbids every network request, the embedded
JSON cannot end its `<script>` element, and the script puts snapshot text into the page only as
text (`textContent`), never as markup.
"""

from __future__ import annotations

import html
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from nnviz.fs import atomic_write

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'wasm-unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:"
)
"""No fetch, no frame, no font, no remote image: the page can only run its own inline code."""

_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(value: Any) -> str:
    """JSON that is inert inside `<script type="application/json">`: no `<`, `>` or `&` (so no
    `</script>` or `<!--`), and ASCII only (U+2028/2029 and lone surrogates become escapes)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).translate(_JSON_ESCAPES)


@cache
def _asset(name: str) -> str:
    return resources.files("nnviz.render").joinpath(name).read_text(encoding="utf-8")


def _scripts() -> str:
    """Graphviz, then the page's code: drawing (html_draw.js), then panels and input."""
    return "\n".join(
        _asset(name) for name in ("vendor/graphviz.js", "html_draw.js", "html_panels.js")
    )


def page(view: dict[str, Any]) -> str:
    """The complete HTML document showing `view`."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>nnviz</title>\n"
        f"<style>\n{_asset('html_page.css')}</style>\n</head>\n<body>\n"
        f"{_asset('html_body.html')}"
        f'<script type="application/json" id="nnviz-view">{script_json(view)}</script>\n'
        f'<script type="module">\n{_scripts()}'
        "</script>\n</body>\n</html>\n"
    )


def frame(page_html: str, height: int = 640) -> str:
    """The page inside a sandboxed `<iframe srcdoc>` (how Jupyter shows it inline): its script
    runs in an opaque origin, its style and CSP stay inside the frame."""
    return (
        f'<iframe sandbox="allow-scripts" srcdoc="{html.escape(page_html, quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #d0d7de"></iframe>'
    )


def write(view: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the page to `path` atomically; return the path."""
    return atomic_write(path, page(view))
