"""Tiny, well-formed GGUF files for tests of what reads GGUF headers (no weights a model could run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_gguf(
    path: Path, *, chat_template: str | None = "{{ messages }}", context: int = 1024, licence: str | None = "apache-2.0"
) -> Path:
    """A tiny but well-formed GGUF model file, as llama.cpp's conversion scripts write them."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Tiny")
    writer.add_context_length(context)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if licence:
        writer.add_license(licence)
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_token_list([f"w{i}" for i in range(300)])
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
