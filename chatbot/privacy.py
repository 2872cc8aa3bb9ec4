"""Export and erase everything the chatbot holds about one user."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
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


class PrivacyService:
    """Right of access and right to erasure, across the database, the store and files."""

    def __init__(
        self, users: UserData, profiles: ProfileData, documents: OwnedDocuments, uploads_dir: Path
    ) -> None:
        self.users = users
        self.profiles = profiles
        self.documents = documents
        self.uploads_dir = uploads_dir

    def export(self, user_id: str) -> dict[str, Any]:
        data = self.users.export_user_data(user_id=user_id)
        data["profile"] = self.profiles.export(user_id=user_id)
        data["private_documents"] = [
            {"doc_id": d.doc_id, "title": d.title, "source": d.source, "chunks": d.n_chunks}
            for d in self.documents.documents(acl=acl_for(user=user_id))
        ]
        return data

    def delete(self, user_id: str) -> dict[str, int]:
        """Remove the user everywhere; old store versions are purged so nothing lingers."""
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
