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
    """The checked-out commit, read from ``.git`` files (no git process).

    ``.git`` is a folder in a clone and a ``gitdir: <path>`` file in a ``git worktree``, whose
    branch refs live in the main repository's folder (named by ``commondir``).
    """
    for folder in (start, *start.parents):
        git = folder / ".git"
        try:
            if git.is_file():  # a worktree: "gitdir: <its folder in the main .git>"
                git = (folder / git.read_text().removeprefix("gitdir:").strip()).resolve()
            if not git.is_dir():
                continue
            common = git
            if (git / "commondir").is_file():
                common = (git / (git / "commondir").read_text().strip()).resolve()
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head[5:]
            if (common / ref).is_file():
                return (common / ref).read_text().strip()
            for line in (common / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        except OSError:
            return None
        return None
    return None
