"""Queries for user profiles: interests with provenance, stated facts, relevance signals.

Kept beside ``repos.py`` (same rules: one session per call, keyword-only arguments, detached
rows) so neither module grows past a readable size. Weights are stored as of ``updated_at`` and
decay exponentially with a half-life; read-modify-write runs in ``BEGIN IMMEDIATE`` on SQLite
and ``SELECT ... FOR UPDATE`` elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, delete, select

from chatbot.db.engine import session_scope
from chatbot.db.models import (
    CitationOpen,
    Interest,
    ProfileFacts,
    RelevanceSignal,
    utcnow,
)
from chatbot.domain import InterestUpdate, InvalidInputError, NotFoundError

FACT_FIELDS = ("language", "expertise", "style", "persona")
MAX_EVIDENCE = 20
MAX_WEIGHT = 25.0


def decayed(value: float, updated_at: datetime, now: datetime, half_life_days: float) -> float:
    """``value`` as of ``now``, halving every ``half_life_days``."""
    if half_life_days <= 0:
        return value
    age_days = max(0.0, (now - updated_at).total_seconds() / 86400)
    return value * math.pow(0.5, age_days / half_life_days)


class ProfileRepository:
    """Profile persistence; safe to share between threads."""

    def __init__(self, engine: Engine, *, half_life_days: float = 30.0) -> None:
        self._engine = engine
        self.half_life_days = half_life_days

    # -- interests ---------------------------------------------------------------------------

    def interests(self, *, user_id: str) -> list[Interest]:
        """The user's interests with decayed weights, strongest first."""
        now = utcnow()
        with session_scope(self._engine, read_only=True) as session:
            rows = list(session.exec(select(Interest).where(Interest.user_id == user_id)))
        for row in rows:
            if not row.explicit:
                row.weight = decayed(row.weight, row.updated_at, now, self.half_life_days)
        return sorted(rows, key=lambda r: -r.weight)

    def add_interest_evidence(self, *, user_id: str, updates: Sequence[InterestUpdate]) -> None:
        if not updates:
            return
        now = utcnow()
        with session_scope(self._engine) as session:
            for u in updates:
                row = _locked(
                    session,
                    select(Interest).where(Interest.user_id == user_id, Interest.term == u.term),
                )
                if row is None:
                    row = Interest(user_id=user_id, term=u.term[:100], label=u.label[:100])
                elif not row.explicit:
                    row.weight = decayed(row.weight, row.updated_at, now, self.half_life_days)
                row.weight = max(-MAX_WEIGHT, min(MAX_WEIGHT, row.weight + u.delta))
                row.explicit = row.explicit or u.explicit
                row.evidence = [
                    *row.evidence,
                    {**u.evidence, "delta": round(u.delta, 3), "at": now.isoformat()},
                ][-MAX_EVIDENCE:]
                row.confidence = (
                    1.0 if row.explicit else round(1 - math.exp(-len(row.evidence) / 3), 3)
                )
                row.updated_at = now
                session.add(row)

    def set_interest(self, *, user_id: str, interest_id: str, weight: float) -> Interest:
        """An explicit edit by the user: fixes the weight and stops it decaying."""
        if not -MAX_WEIGHT <= weight <= MAX_WEIGHT:
            raise InvalidInputError(f"weight must be between {-MAX_WEIGHT} and {MAX_WEIGHT}")
        with session_scope(self._engine) as session:
            row = _owned_interest(session, user_id, interest_id)
            row.weight, row.explicit, row.confidence, row.updated_at = weight, True, 1.0, utcnow()
            row.evidence = [*row.evidence, {"kind": "edit", "at": row.updated_at.isoformat()}][
                -MAX_EVIDENCE:
            ]
            session.add(row)
            return row

    def delete_interest(self, *, user_id: str, interest_id: str) -> None:
        with session_scope(self._engine) as session:
            session.delete(_owned_interest(session, user_id, interest_id))

    # -- facts -------------------------------------------------------------------------------

    def facts(self, *, user_id: str) -> ProfileFacts:
        with session_scope(self._engine, read_only=True) as session:
            row = session.get(ProfileFacts, user_id)
        return row or ProfileFacts(user_id=user_id)

    def set_fact(
        self, *, user_id: str, field: str, value: str | None, provenance: dict[str, Any]
    ) -> ProfileFacts:
        if field not in FACT_FIELDS:
            raise InvalidInputError(
                f"unknown profile field {field!r}; one of {', '.join(FACT_FIELDS)}"
            )
        with session_scope(self._engine) as session:
            row = _locked(session, select(ProfileFacts).where(ProfileFacts.user_id == user_id))
            row = row or ProfileFacts(user_id=user_id)
            setattr(row, field, value)
            row.provenance = {**row.provenance, field: {**provenance, "at": utcnow().isoformat()}}
            row.updated_at = utcnow()
            session.add(row)
            return row

    # -- relevance signals -------------------------------------------------------------------

    def add_signal(self, *, user_id: str, doc_ids: Iterable[str], delta: float) -> None:
        now = utcnow()
        with session_scope(self._engine) as session:
            for doc_id in dict.fromkeys(doc_ids):
                row = _locked(
                    session,
                    select(RelevanceSignal).where(
                        RelevanceSignal.user_id == user_id, RelevanceSignal.doc_id == doc_id
                    ),
                )
                if row is None:
                    row = RelevanceSignal(user_id=user_id, doc_id=doc_id)
                else:
                    row.value = decayed(row.value, row.updated_at, now, self.half_life_days)
                row.value = max(-5.0, min(5.0, row.value + delta))
                row.updated_at = now
                session.add(row)

    def signals(
        self, *, user_id: str | None, doc_ids: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Decayed signal per document: one user's, or everyone's summed when user_id is None.

        ``doc_ids=None`` means every document the user (or anyone) has rated.
        """
        if doc_ids is not None and not doc_ids:
            return {}
        now = utcnow()
        out: dict[str, float] = {}
        query = select(RelevanceSignal)
        if doc_ids is not None:
            query = query.where(col(RelevanceSignal.doc_id).in_(list(doc_ids)))
        if user_id is not None:
            query = query.where(RelevanceSignal.user_id == user_id)
        with session_scope(self._engine, read_only=True) as session:
            for row in session.exec(query):
                out[row.doc_id] = out.get(row.doc_id, 0.0) + decayed(
                    row.value, row.updated_at, now, self.half_life_days
                )
        return out

    def popular_documents(self, *, limit: int = 20) -> list[tuple[str, float]]:
        """Documents with the most positive feedback from everyone (cold start)."""
        with session_scope(self._engine, read_only=True) as session:
            rows = session.exec(
                select(RelevanceSignal.doc_id, func.sum(RelevanceSignal.value).label("total"))
                .group_by(RelevanceSignal.doc_id)
                .order_by(func.sum(RelevanceSignal.value).desc())
                .limit(limit)
            ).all()
        return [(doc_id, float(total)) for doc_id, total in rows if total > 0]

    def record_citation_open(self, *, user_id: str, message_id: str, chunk_id: str) -> None:
        with session_scope(self._engine) as session:
            session.add(
                CitationOpen(user_id=user_id, message_id=message_id, chunk_id=chunk_id[:128])
            )

    # -- privacy -----------------------------------------------------------------------------

    def export(self, *, user_id: str) -> dict[str, Any]:
        facts = self.facts(user_id=user_id)
        with session_scope(self._engine, read_only=True) as session:
            signals = list(
                session.exec(select(RelevanceSignal).where(RelevanceSignal.user_id == user_id))
            )
            opens = list(session.exec(select(CitationOpen).where(CitationOpen.user_id == user_id)))
        return {
            "facts": facts.model_dump(mode="json", exclude={"user_id"}),
            "interests": [
                i.model_dump(mode="json", exclude={"user_id"})
                for i in self.interests(user_id=user_id)
            ],
            "document_signals": [s.model_dump(mode="json", exclude={"user_id"}) for s in signals],
            "citations_opened": [o.model_dump(mode="json", exclude={"user_id"}) for o in opens],
        }

    def reset(self, *, user_id: str) -> None:
        """Forget everything learned about the user (their conversations stay)."""
        with session_scope(self._engine) as session:
            for table in (Interest, ProfileFacts, RelevanceSignal, CitationOpen):
                session.exec(delete(table).where(col(table.user_id) == user_id))  # type: ignore[attr-defined]


def _locked(session: Session, query: Any) -> Any:
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.exec(query).first()


def _owned_interest(session: Session, user_id: str, interest_id: str) -> Interest:
    row = session.get(Interest, interest_id)
    if row is None or row.user_id != user_id:
        raise NotFoundError("interest not found")
    return row
