"""The error a remote model server raises (kept free of heavy imports for the CLI and web)."""

from __future__ import annotations


class ModelServerError(RuntimeError):
    """A model server could not be used; the message names the URL and what to check."""


def unreachable(kind: str, url: str, detail: str, env_prefix: str) -> ModelServerError:
    """The error for a server that is down, unreachable or too slow."""
    return ModelServerError(
        f"cannot reach the {kind} server at {url} ({detail}). Check that the server is running "
        f"and serves the OpenAI API there (curl {url.rstrip('/')}/models), and the settings "
        f"{env_prefix}BASE_URL, {env_prefix}MODEL and {env_prefix}TIMEOUT_S."
    )
