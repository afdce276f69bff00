"""Write steering offsets as a llama.cpp control-vector GGUF.

The layout is the one llama.cpp's ``cvector-generator`` writes and ``--control-vector`` reads:
architecture ``controlvector``, one float32 tensor ``direction.{i}`` per layer ``i`` from 1 to
n_layers - 1, added to the output of decoder block ``i`` (block 0 is never steered there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_control_vector(path: Path, offsets: Any, model_hint: str) -> Path:
    """``offsets`` is [n_layers, hidden]: what emochat adds after each decoder block."""
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    n_layers = int(offsets.shape[0])
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", n_layers - 1)
    for layer in range(1, n_layers):
        writer.add_tensor(f"direction.{layer}", np.asarray(offsets[layer], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
