"""dtype auto: bfloat16 only where the CPU computes it natively (chatbot.hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot import hardware
from chatbot.providers import make_embed_model
from chatbot.settings import EmbeddingSettings, LLMSettings

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx avx2 fma {extra}
bogomips\t: 4800.00
"""


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra="avx512f avx512_bf16"))
    flags = hardware.cpu_flags(cpuinfo)
    assert {"avx2", "avx512_bf16"} <= flags
    assert "bogomips" not in flags


def test_cpu_flags_without_cpuinfo_are_empty(tmp_path: Path) -> None:
    assert hardware.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(("native", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(hardware, "has_fast_bfloat16", lambda: native)
    assert hardware.resolve_dtype("auto") == expected
    # an explicit choice is kept whatever the CPU
    assert hardware.resolve_dtype("bfloat16") == "bfloat16"
    assert hardware.resolve_dtype("float32") == "float32"


def test_unknown_dtype_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        hardware.resolve_dtype("float16")


def test_settings_default_to_auto() -> None:
    assert LLMSettings().dtype == "auto"
    assert EmbeddingSettings().dtype == "auto"


@pytest.mark.parametrize(("native", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_the_factory_gives_the_embedding_the_resolved_dtype(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(hardware, "has_fast_bfloat16", lambda: native)
    embedding = make_embed_model(EmbeddingSettings(mode="local"))
    assert embedding.dtype == expected  # type: ignore[attr-defined]
