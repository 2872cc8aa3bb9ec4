"""``chatbot backup DIR`` and ``chatbot restore DIR``: one consistent generation of everything.

A backup holds, taken while the store's write lock is held (no ingestion, deletion or compaction
in any process can commit meanwhile, so the vectors and the catalog are one generation):

* ``chatbot.db`` and ``index/catalog.db`` through SQLite's online backup API (a plain copy of a
  live WAL database can miss everything still in ``-wal``; security guide 3.6 and 4.6),
* ``index/lancedb/``: a copy of the LanceDB directory (all versions up to the lock),
* ``uploads/`` and the deletion log, and ``manifest.json`` with a SHA-256 of every file.

Restore checks the manifest, moves the current data aside, puts the backup in place and then
**replays the deletion log** (the live one, the backup's own and any given with
``--deletion-log``): every user erased after the backup was taken is erased again, with the
same purge as ``chatbot users delete``, before the server sees the data. So a deleted user
stays deleted. Stop the server before restoring.

Only the embedded deployment (SQLite + LanceDB) is covered; with PostgreSQL or Milvus use their
own tools (``pg_dump``, Milvus backup) and keep the same deletion log.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatbot import __version__
from chatbot.privacy import DELETION_LOG, deleted_users
from chatbot.settings import Settings

MANIFEST = "manifest.json"
FORMAT = "chatbot-backup/1"
_PREVIOUS = ".pre-restore"


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


@dataclass
class RestoreReport:
    backup_created_at: str
    replayed_deletions: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    vectors: int = 0
    orphans_removed: int = 0


def _sqlite_path(settings: Settings) -> Path:
    url = settings.database_url
    if not url.startswith("sqlite:///") or ":memory:" in url:
        raise BackupError(
            f"chatbot backup covers the embedded SQLite database only, not {url.split(':')[0]}; "
            "use the database's own tool (pg_dump)"
        )
    return Path(url.removeprefix("sqlite:///"))


def _check_embedded(settings: Settings) -> None:
    if settings.store.backend != "lancedb" or settings.store.catalog_url:
        raise BackupError(
            "chatbot backup covers the embedded store (LanceDB + SQLite catalog) only; "
            "back up Milvus and PostgreSQL with their own tools"
        )


def sqlite_backup(source: Path, dest: Path) -> None:
    """A consistent copy of a live (WAL) SQLite database through the online backup API."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        src.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        target.close()
        src.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def backup(settings: Settings, dest: Path, *, store: Any | None = None) -> dict[str, Any]:
    """Write a backup of ``settings.data_dir`` into the new folder ``dest``; returns the manifest.

    ``store`` is an open ChunkStore of the same data (the server's own, in tests); by default
    one is opened just for the backup.
    """
    _check_embedded(settings)
    db_path = _sqlite_path(settings)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; give a new folder for each backup")
    data = settings.data_dir
    if dest.resolve().is_relative_to(data.resolve()):
        raise BackupError(f"{dest} is inside the data folder {data}; keep backups elsewhere")
    own_store = store is None
    if store is None:
        from chatbot.index.storage import ChunkStore

        store = ChunkStore(settings.index_dir, settings.store)
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with store.write_locked():
            stats = store.stats()
            (dest / "index").mkdir()
            catalog: Any = store.catalog  # the SQLite Catalog (checked above)
            catalog.backup_to(dest / "index" / "catalog.db")
            lance = settings.index_dir / "lancedb"
            if lance.is_dir():
                shutil.copytree(lance, dest / "index" / "lancedb")
            if db_path.is_file():
                sqlite_backup(db_path, dest / "chatbot.db")
            uploads = data / "uploads"
            if uploads.is_dir():
                shutil.copytree(uploads, dest / "uploads")
            log = data / DELETION_LOG
            if log.is_file():
                shutil.copy2(log, dest / DELETION_LOG)
    finally:
        if own_store:
            store.close()
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "version": __version__,
        "seconds": round(time.monotonic() - started, 3),
        "store": stats,
        "files": {str(p.relative_to(dest)): _sha256(p) for p in _files(dest)},
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def verify(src: Path) -> dict[str, Any]:
    """The manifest of a complete, unmodified backup; BackupError otherwise."""
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BackupError(f"{src} is not a chatbot backup (no readable {MANIFEST})") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    present = {str(p.relative_to(src)) for p in _files(src)}
    expected: dict[str, str] = manifest.get("files", {})
    missing = sorted(set(expected) - present)
    if missing:
        raise BackupError(f"the backup is incomplete: {missing[:5]} missing")
    changed = [name for name, digest in expected.items() if _sha256(src / name) != digest]
    if changed:
        raise BackupError(f"the backup was modified or damaged: {changed[:5]}")
    return manifest


def restore(
    settings: Settings,
    src: Path,
    *,
    deletion_logs: Sequence[Path] = (),
    keep_previous: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> RestoreReport:
    """Replace the data of ``settings`` with the backup in ``src``, then replay deletions.

    The current data is moved to ``<data_dir>/.pre-restore/`` first and put back if anything
    fails; after a successful restore it is removed (``keep_previous`` keeps it).
    """
    _check_embedded(settings)
    db_path = _sqlite_path(settings)
    manifest = verify(src)
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    live_log = data / DELETION_LOG
    # read every deletion log before anything moves: the live one outlives the restore
    erased = deleted_users(live_log, src / DELETION_LOG, *deletion_logs)
    previous = data / _PREVIOUS
    if previous.exists():
        shutil.rmtree(previous)
    previous.mkdir()
    targets = {
        "chatbot.db": db_path,
        "index": settings.index_dir,
        "uploads": data / "uploads",
    }
    moved: list[tuple[Path, Path]] = []

    def move_aside(path: Path) -> None:
        if path.exists():
            aside = previous / path.name
            shutil.move(str(path), str(aside))
            moved.append((aside, path))

    try:
        for path in targets.values():
            move_aside(path)
        for suffix in ("-wal", "-shm", "-journal"):  # never pair a restored db with an old WAL
            move_aside(db_path.with_name(db_path.name + suffix))
        for name, path in targets.items():
            if (src / name).exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if (src / name).is_dir() else shutil.copy2
                copy(src / name, path)
        progress(f"restored the backup of {manifest['created_at']}")
        report = _replay(settings, erased, manifest, progress)
    except BaseException:
        for target in targets.values():
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
        for aside, original in reversed(moved):
            shutil.move(str(aside), str(original))
        shutil.rmtree(previous, ignore_errors=True)
        raise
    if not keep_previous:
        shutil.rmtree(previous, ignore_errors=True)
    return report


def _replay(
    settings: Settings, erased: list[str], manifest: dict[str, Any], progress: Callable[[str], None]
) -> RestoreReport:
    """Erase again every logged user present in the restored data; check the result."""
    from chatbot.container import Container

    report = RestoreReport(backup_created_at=str(manifest["created_at"]))
    container = Container(settings)
    try:
        repo, store = container.repo, container.store
        for user_id in erased:
            if repo.get_user(user_id=user_id) is not None or store.documents(acl=f"user:{user_id}"):
                if repo.get_user(user_id=user_id) is None:  # only documents or files were left
                    owned = [d.doc_id for d in store.documents(acl=f"user:{user_id}")]
                    store.delete_documents(owned)
                    store.optimize(purge=True)
                else:
                    container.privacy.delete(user_id)
                report.replayed_deletions.append(user_id)
                progress(f"replayed the deletion of user {user_id}")
            shutil.rmtree(settings.data_dir / "uploads" / user_id, ignore_errors=True)
        report.orphans_removed = store.reconcile()
        _integrity(_sqlite_path(settings))
        _integrity(settings.index_dir / "catalog.db")
        stats = store.stats()
        report.documents = int(stats["documents"])
        report.chunks = int(stats["chunks"])
        report.vectors = int(stats["vectors"])
    finally:
        container.close()
    return report


def _integrity(path: Path) -> None:
    if not path.is_file():
        return
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"{path.name} failed its integrity check after restore: {result}")
