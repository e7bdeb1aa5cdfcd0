"""The one place that runs Graphviz: DOT source in, PDF/SVG/PNG bytes (or a written file) out.

Two engines:
- `embedded` (default): the Graphviz that the `pygraphviz` wheel bundles, run in-process; no
  system install needed.
- `system`: the `dot` program on PATH, run as a subprocess.

Choose with `engine=` (the CLI's `--engine`) or the `NNVIZ_ENGINE` environment variable; when
pygraphviz cannot be imported the system engine is used. A clean render prints nothing: Graphviz's
C libraries write straight to file descriptor 2, so the embedded render runs with fd 2 captured
and re-emits only real messages, dropping known noise (the bundled fontconfig's `unknown element
"reset-dirs"` complaint about a newer system config, pygraphviz's "layout may take a long time").
Graphviz errors become `RenderError`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from nnviz.errors import RenderError
from nnviz.fs import atomic_write

ENGINES = ("embedded", "system")
ENGINE_ENV = "NNVIZ_ENGINE"
FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".svg": "svg",
    ".png": "png",
    ".dot": "dot",
    ".gv": "dot",
    ".json": "json",
    ".html": "html",
    ".txt": "text",
}
"""Output extensions and the format each one means (`.json` is a snapshot, not a drawing;
`.html` the interactive page, see `nnviz.render.html`; `.txt` the summary table,
`nnviz.render.table`)."""
GRAPHVIZ_FORMATS = ("pdf", "svg", "png", "dot")

_NOISE = (
    'unknown element "reset-dirs"',
    "layout may take a long time",
)
_TOO_LARGE = "too large for cairo-renderer bitmaps"
MAX_PNG_PIXELS = 200_000_000
"""Largest PNG (in pixels, ~800 MB while drawing) rendered at full size instead of shrunk."""
_lock = threading.Lock()


def format_of(path: str | os.PathLike[str]) -> str:
    """The format an output path's extension asks for; `RenderError` listing them otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RenderError(
            f"{path}: unknown output format {suffix or '(no extension)'!r}; "
            f"use one of {' '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def choose_engine(engine: str | None = None) -> str:
    """The engine to run: the argument, else `$NNVIZ_ENGINE`, else embedded (if importable)."""
    name = (engine or os.environ.get(ENGINE_ENV) or "embedded").strip().lower()
    if name not in ENGINES:
        raise RenderError(f"unknown Graphviz engine {name!r}; use one of {', '.join(ENGINES)}")
    if name == "embedded" and not embedded_available():
        return "system"
    return name


def embedded_available() -> bool:
    try:
        import pygraphviz  # noqa: F401
    except ImportError:
        return False
    return True


def render(
    dot_source: str,
    path_or_format: str | os.PathLike[str],
    engine: str | None = None,
    *,
    dpi: int | None = None,
) -> bytes | Path:
    """Lay out and render `dot_source`.

    `path_or_format` is a format name (`"svg"`, `"png"`, `"pdf"`, `"dot"`: the bytes are
    returned) or an output path (written atomically, parent folders created; the path is
    returned). `dpi` sets the PNG resolution. `.dot`/`.gv` output is the DOT source itself.
    """
    if isinstance(path_or_format, str) and path_or_format.lower() in GRAPHVIZ_FORMATS:
        fmt, target = path_or_format.lower(), None
    else:
        target = Path(path_or_format)
        fmt = format_of(target)
        if fmt not in GRAPHVIZ_FORMATS:
            raise RenderError(f"{target}: Graphviz cannot write {fmt}; draw it with nnviz.draw")
    if fmt == "dot":
        data = dot_source.encode("utf-8")
    else:
        chosen = choose_engine(engine)
        args = f"-Gdpi={int(dpi)}" if dpi and fmt == "png" else ""
        run = _render_embedded if chosen == "embedded" else _render_system
        data, messages = run(dot_source, fmt, args)
        shrunk = [m for m in messages if _TOO_LARGE in m]
        if fmt == "png" and shrunk:
            # Cairo caps bitmaps at 32767 px and shrinks the text to fit; libgd has no such cap,
            # so a very tall network stays readable at 100 % zoom, unless it would need gigabytes.
            messages = [m for m in messages if _TOO_LARGE not in m]
            try:
                if _full_pixels(data, shrunk[0]) > MAX_PNG_PIXELS:
                    raise RenderError("too many pixels")
                data, extra = run(dot_source, "png:gd", args)
                messages += [m for m in extra if _TOO_LARGE not in m]
            except RenderError:
                messages.append(_SHRUNK)
        if fmt == "png" and _pixels(data) > MAX_PNG_PIXELS:
            # Within cairo's side limit but still too many pixels (a wide detector drawing):
            # render at the resolution that fits, and say so, whichever engine drew it.
            fitting = int((dpi or 96) * (MAX_PNG_PIXELS / _pixels(data)) ** 0.5)
            data, extra = run(dot_source, "png", f"-Gdpi={max(fitting, 1)}")
            messages += [m for m in extra if _TOO_LARGE not in m and m not in messages]
            if _SHRUNK not in messages:
                messages.append(_SHRUNK)
        _echo(messages)
    if target is None:
        return data
    return atomic_write(target, data)


_SHRUNK = (
    "nnviz: warning: the drawing is too large for a PNG bitmap and was shrunk; "
    "use .svg or .pdf for full detail"
)


def _pixels(png: bytes) -> int:
    """Width times height from a PNG's header (0 when it is not one)."""
    if len(png) < 24 or not png.startswith(b"\x89PNG"):
        return 0
    width, height = struct.unpack(">II", png[16:24])
    return int(width * height)


def _full_pixels(png: bytes, message: str) -> float:
    """Pixels of the unshrunk PNG: cairo's shrunk size divided by the factor it reports."""
    match = re.search(r"Scaling by ([0-9.]+)", message)
    if not match or len(png) < 24 or float(match.group(1)) <= 0:
        return float("inf")
    width, height = struct.unpack(">II", png[16:24])
    return float(width * height) / float(match.group(1)) ** 2


def _render_embedded(dot_source: str, fmt: str, args: str) -> tuple[bytes, list[str]]:
    with _lock, _captured_stderr() as messages:
        try:
            import pygraphviz

            graph = pygraphviz.AGraph(string=dot_source)
            data = graph.draw(format=fmt, prog="dot", args=args)
        except Exception as exc:  # pygraphviz raises DotError, ValueError, ...
            failure: Exception | None = exc
            data = None
        else:
            failure = None
    messages_left = _messages(messages.getvalue())
    if failure is not None or not data:
        detail = _one_line(messages_left) or str(failure or "no output")
        raise RenderError(f"Graphviz (embedded) failed: {detail}")
    return bytes(data), messages_left


def _render_system(dot_source: str, fmt: str, args: str) -> tuple[bytes, list[str]]:
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError(
            "the system Graphviz `dot` is not on PATH; install Graphviz "
            "(see the README) or use the embedded engine (--engine embedded)"
        )
    command = [exe, f"-T{fmt}", *([args] if args else [])]
    try:
        done = subprocess.run(command, input=dot_source.encode("utf-8"), capture_output=True)
    except OSError as exc:
        raise RenderError(f"cannot run {exe}: {exc.strerror or exc}") from None
    messages = _messages(done.stderr.decode("utf-8", "replace"))
    if done.returncode != 0 or not done.stdout:
        detail = _one_line(messages) or "no output"
        raise RenderError(f"Graphviz `dot` failed (exit {done.returncode}): {detail}")
    return done.stdout, messages


def _messages(captured: str) -> list[str]:
    """Captured Graphviz output without the known noise."""
    return [
        line
        for line in captured.splitlines()
        if line.strip() and not any(noise in line for noise in _NOISE)
    ]


def _one_line(messages: list[str]) -> str:
    return " ".join(" ".join(messages).split())[:300]


def _echo(messages: list[str]) -> None:
    """Pass Graphviz's real warnings on to the user."""
    if messages:
        sys.stderr.write("\n".join(messages) + "\n")
        sys.stderr.flush()


@contextlib.contextmanager
def _captured_stderr() -> Iterator[io.StringIO]:
    """Route file descriptor 2 (and `sys.stderr`) into a buffer while the block runs."""
    buffer = io.StringIO()
    try:
        sys.stderr.flush()
        saved: int | None = os.dup(2)
    except (OSError, ValueError, AttributeError):
        saved = None  # no real fd 2 (an embedded interpreter): capture Python's stream only
    if saved is None:
        with contextlib.redirect_stderr(buffer):
            yield buffer
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", "replace"))


def open_with_default_app(path: str | os.PathLike[str]) -> str | None:
    """Open `path` with the platform's default application, without waiting for it.

    Returns None on success, or a one-line reason why it could not be opened.
    """
    target = os.fspath(path)
    if sys.platform.startswith("win"):
        try:
            os.startfile(target)  # type: ignore[attr-defined]
        except OSError as exc:
            return f"cannot open {target}: {exc.strerror or exc}"
        return None
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    exe = shutil.which(opener)
    if exe is None:
        return f"cannot open {target}: `{opener}` is not available; open the file yourself"
    try:
        subprocess.Popen(
            [exe, target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot open {target} with {opener}: {exc.strerror or exc}"
    return None
