"""Index cache: one folder per (system, documents' content hash, settings), built once.

A folder is used only once its build finished (a ``.complete`` file holding the key); builds
of the same key in two processes are serialised by a lock file. Without a cache root every
index goes to a temporary folder that is removed when the run ends.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CACHE_VERSION = 1
_COMPLETE = ".complete"


class IndexCache:
    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._temps: list[tempfile.TemporaryDirectory[str]] = []

    def get(
        self, kind: str, key: dict[str, Any], build: Callable[[Path], None]
    ) -> tuple[Path, bool]:
        """The folder for ``key``, built by ``build(folder)`` unless cached; (folder, was_cached)."""
        if self.root is None:
            temp = tempfile.TemporaryDirectory(prefix=f"eval-{kind}-")
            self._temps.append(temp)
            folder = Path(temp.name)
            build(folder)
            return folder, False
        blob = json.dumps({"v": CACHE_VERSION, "kind": kind, **key}, sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:20]
        folder = self.root / f"{kind}-{digest}"
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f".{folder.name}.lock"):
            if (folder / _COMPLETE).is_file():
                return folder, True
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / _COMPLETE).write_text(blob, encoding="utf-8")
        return folder, False

    def temp_dir(self, prefix: str) -> Path:
        """A scratch folder removed by :meth:`close` (e.g. for the throwaway chat database)."""
        temp = tempfile.TemporaryDirectory(prefix=prefix)
        self._temps.append(temp)
        return Path(temp.name)

    def close(self) -> None:
        for temp in self._temps:
            temp.cleanup()
        self._temps.clear()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
