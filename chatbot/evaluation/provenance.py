"""Where a report came from: the commit the run started on and the versions of key packages."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from chatbot.settings import PACKAGE_DIR

KEY_PACKAGES = (
    "chatbot",
    "torch",
    "transformers",
    "sentence-transformers",
    "llama-index-core",
    "llama-index-embeddings-huggingface",
    "langchain-core",
    "lancedb",
    "jieba",
    "numpy",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(start: Path = PACKAGE_DIR) -> str | None:
    """The checked-out commit, read from ``.git`` files (no git process)."""
    for folder in (start, *start.parents):
        git = folder / ".git"
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head[5:]
            if (git / ref).is_file():
                return (git / ref).read_text().strip()
            for line in (git / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        except OSError:
            return None
        return None
    return None
