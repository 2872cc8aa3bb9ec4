"""Loads prompts/*.yaml by name into LangChain chat prompt templates."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from langchain_core.prompts import ChatPromptTemplate


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    template: ChatPromptTemplate
    variables: tuple[str, ...]
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class PromptError(ValueError):
    """A prompt file is missing or inconsistent."""


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@lru_cache(maxsize=32)
def load_prompt(name: str, prompts_dir: Path) -> Prompt:
    """Load ``<prompts_dir>/<name>.yaml`` and check its declared variables."""
    path = prompts_dir / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PromptError(f"prompt {name!r} not found in {prompts_dir}") from exc
    declared = set(raw.get("variables") or [])
    messages = [(m["role"], m["content"]) for m in raw["messages"]]
    used = set().union(*(_fields(content) for _, content in messages))
    if used != declared:
        raise PromptError(
            f"prompt {name!r}: templates use {sorted(used)} but declare {sorted(declared)}"
        )
    extras = {
        k: v
        for k, v in raw.items()
        if k not in {"name", "version", "variables", "messages", "description"}
    }
    return Prompt(
        name=raw["name"],
        version=int(raw["version"]),
        template=ChatPromptTemplate.from_messages(messages),
        variables=tuple(sorted(declared)),
        extras=extras,
    )
