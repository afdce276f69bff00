"""What llama.cpp shares across a process.

Its log: llama.cpp's own lines go to ``<cache folder>/llama.cpp.log`` instead of the terminal,
where they would scribble over the app and over what ``say`` prints: the warnings (Gemma-3's
"using full-size SWA cache", say) and the errors behind a model that will not load.

Loading (:func:`open_llama`): quiet, llama-cpp-python points the process's stdout and stderr
at /dev/null while it loads a model and back after. Whatever the app draws meanwhile is lost
while it believes it shown (a status line stayed "Starting…" for good once the detector loaded
beside it), and two loads at once can leave both pointing at /dev/null. emochat loads one model
at a time, with only Python's own ``sys.stdout`` and ``sys.stderr`` silenced: the app writes to
the terminal through the real ones, and llama.cpp's lines go to the log."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import IO, Any

from emochat import paths

LOG_FILE = "llama.cpp.log"
MAX_LOG_BYTES = 1 << 20  # a longer log starts afresh: it is for the last few loads
# ggml_log_level as ggml.h numbers it now (llama-cpp-python's own logger still reads an older
# numbering, so it hides errors and prints warnings: Gemma-3's SWA line came through that way).
# Info and debug, thousands of lines a load (every tensor and graph input), are not kept.
WARN, ERROR, CONTINUE = 3, 4, 5

_lock = threading.Lock()
_load_lock = threading.Lock()
_state: dict[str, Any] = {}  # the log's path and file, the last level, the callback


def _open_log(path: Path) -> IO[str] | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = path.exists() and path.stat().st_size > MAX_LOG_BYTES
        return path.open("w" if fresh else "a", encoding="utf-8")
    except OSError:
        return None  # an unwritable cache loses the log, never the chat


def route_llama_logs() -> Path:
    """Send llama.cpp's warnings and errors to the log file, and nothing of its to the
    terminal (set once a process); where the log is."""
    import ctypes

    import llama_cpp

    with _lock:
        if "callback" not in _state:

            @llama_cpp.llama_log_callback
            def write(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
                shown = _state.get("last", 0) if level == CONTINUE else level
                _state["last"] = shown
                handle = _state.get("file")
                if handle is not None and shown in (WARN, ERROR):
                    handle.write(text.decode("utf-8", errors="replace"))
                    handle.flush()

            _state["path"] = paths.cache_dir() / LOG_FILE
            _state["file"] = _open_log(_state["path"])
            _state["callback"] = write  # ctypes calls it for the life of the process: keep it
            llama_cpp.llama_log_set(write, ctypes.c_void_p(0))
        return Path(_state["path"])


def open_llama(model_path: str, **options: Any) -> Any:
    """``llama_cpp.Llama(model_path, **options)``, loaded as the module says; quiet after."""
    import llama_cpp

    route_llama_logs()
    with (
        _load_lock,
        open(os.devnull, "w") as null,
        contextlib.redirect_stdout(null),
        contextlib.redirect_stderr(null),
    ):
        # verbose=True is what keeps llama-cpp-python off the process's file descriptors; what
        # it prints meanwhile goes to the null file above
        llama = llama_cpp.Llama(model_path=model_path, verbose=True, **options)
    llama.verbose = False  # no prints of its own while it generates
    return llama
