"""What this CPU computes fast, to pick the local models' compute dtype when settings say auto.

bfloat16 halves the memory of the weights, and on CPUs with native bfloat16 arithmetic
(x86 AVX-512 BF16 or AMX) it is also 3-5x faster than float32. Without those instructions
torch emulates it, and the same model runs several times *slower* than in float32
(``bench/dtype.py`` on an AVX2-only EPYC: the 1.5B LLM's RAG-prompt prefill 80.2 s vs 23.7 s,
MiniLM 2.8 vs 7.7-14.5 chunks/s). ``auto`` therefore means bfloat16 only where the CPU has it.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

ComputeDtype = Literal["float32", "bfloat16"]
Dtype = Literal["auto", "float32", "bfloat16"]
"""A dtype setting: ``auto`` or a :data:`ComputeDtype`."""
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@cache
def has_fast_bfloat16() -> bool:
    """Whether the CPU does bfloat16 arithmetic natively (x86 AVX-512 BF16 or AMX)."""
    # the first torch import may happen here: keep decoding fast under contention (local_chat)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch.cpu

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (ImportError, AttributeError, RuntimeError):  # private torch API: fall back to /proc
        return bool(_BF16_FLAGS & cpu_flags())


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The x86 feature flags Linux reports (empty elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def resolve_dtype(dtype: str) -> ComputeDtype:
    """``auto`` → bfloat16 where the CPU has it natively, else float32; others unchanged."""
    if dtype == "bfloat16":
        return "bfloat16"
    if dtype == "float32":
        return "float32"
    if dtype != "auto":
        raise ValueError(f"unknown dtype {dtype!r}: use auto, float32 or bfloat16")
    chosen: ComputeDtype = "bfloat16" if has_fast_bfloat16() else "float32"
    log.debug("dtype auto -> %s", chosen)
    return chosen
