"""Export and erase everything the chatbot holds about one user."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chatbot.domain import acl_for


class UserData(Protocol):
    def export_user_data(self, *, user_id: str) -> dict[str, Any]: ...
    def delete_user(self, *, user_id: str) -> None: ...


class ProfileData(Protocol):
    def export(self, *, user_id: str) -> dict[str, Any]: ...
    def reset(self, *, user_id: str) -> None: ...


class OwnedDocuments(Protocol):
    def documents(self, *, acl: str | None = None) -> Sequence[Any]: ...
    def delete_documents(self, doc_ids: Sequence[str]) -> int: ...
    def optimize(self, *, purge: bool = False) -> None: ...


DELETION_LOG = "deletions.jsonl"


def record_deletion(log: Path, user_id: str) -> None:
    """Append an erased user's id (an opaque uuid, nothing personal) to the deletion log, fsynced.

    Restoring a backup replays this log, so an erased user stays erased (docs/security.md).
    """
    line = json.dumps({"kind": "user", "id": user_id, "at": datetime.now(UTC).isoformat()})
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def deleted_users(*logs: Path) -> list[str]:
    """The user ids erased according to these logs, in order, without repeats."""
    seen: dict[str, None] = {}
    for log in logs:
        if not log.is_file():
            continue
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
            if isinstance(entry, dict) and entry.get("kind") == "user" and entry.get("id"):
                seen.setdefault(str(entry["id"]), None)
    return list(seen)


class PrivacyService:
    """Right of access and right to erasure, across the database, the store and files."""

    def __init__(
        self,
        users: UserData,
        profiles: ProfileData,
        documents: OwnedDocuments,
        uploads_dir: Path,
        deletion_log: Path | None = None,
    ) -> None:
        self.users = users
        self.profiles = profiles
        self.documents = documents
        self.uploads_dir = uploads_dir
        self.deletion_log = deletion_log

    def export(self, user_id: str) -> dict[str, Any]:
        data = self.users.export_user_data(user_id=user_id)
        data["profile"] = self.profiles.export(user_id=user_id)
        data["private_documents"] = [
            {"doc_id": d.doc_id, "title": d.title, "source": d.source, "chunks": d.n_chunks}
            for d in self.documents.documents(acl=acl_for(user=user_id))
        ]
        return data

    def delete(self, user_id: str) -> dict[str, int]:
        """Remove the user everywhere; old store versions are purged so nothing lingers.

        The id goes to the deletion log first, so a crash half-way is finished by the next
        restore (or a second ``users delete``), and restored backups replay it.
        """
        if self.deletion_log is not None:
            record_deletion(self.deletion_log, user_id)
        owned = [d.doc_id for d in self.documents.documents(acl=acl_for(user=user_id))]
        chunks = self.documents.delete_documents(owned) if owned else 0
        if owned:
            self.documents.optimize(purge=True)
        self.profiles.reset(user_id=user_id)
        self.users.delete_user(user_id=user_id)
        files = 0
        folder = self.uploads_dir / user_id
        if folder.is_dir():
            files = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
        return {"documents": len(owned), "chunks": chunks, "files": files}
