"""What runs, decided once: the typed run configuration and the runtime built from it.

``Runtime`` is imported when first asked for, so the command line can read the configuration's
choices for ``--help`` without the sessions and chats behind the runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emochat.runtime.config import GenerationConfig, ModelConfig, RunConfig, check_config

if TYPE_CHECKING:
    from emochat.runtime.runtime import Runtime

__all__ = ["GenerationConfig", "ModelConfig", "RunConfig", "Runtime", "check_config"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from emochat.runtime.runtime import Runtime

        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
