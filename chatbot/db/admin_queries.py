"""Read-only queries behind the admin tab: every rating and the latest refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from chatbot.db.engine import session_scope
from chatbot.db.models import Feedback, Message


class AdminQueries:
    """What the admin tab shows about answers; ``Repository`` inherits these."""

    _engine: Engine

    def feedback_dashboard(self) -> list[dict[str, Any]]:
        """Every rating with the time, reason and the rated answer's citations and refusal."""
        statement = (
            select(Feedback, Message.citations, Message.refused)
            .join(Message, col(Message.id) == col(Feedback.message_id))
            .order_by(col(Feedback.updated_at))
        )
        with session_scope(self._engine, read_only=True) as session:
            return [
                {
                    "rating": row.rating,
                    "reason": row.reason,
                    "comment": row.comment,
                    "updated_at": row.updated_at,
                    "citations": citations,
                    "refused": refused,
                }
                for row, citations, refused in session.exec(statement)
            ]

    def refused_answers(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """The latest "I don't know" answers with the question that led to each."""
        answers = (
            select(Message)
            .where(Message.role == "assistant", col(Message.refused).is_(True))
            .order_by(col(Message.created_at).desc())
            .limit(limit)
        )
        with session_scope(self._engine, read_only=True) as session:
            rows = []
            for answer in session.exec(answers).all():
                question = session.exec(
                    select(Message.content)
                    .where(
                        Message.conversation_id == answer.conversation_id,
                        Message.role == "user",
                        col(Message.created_at) < answer.created_at,
                    )
                    .order_by(col(Message.created_at).desc())
                    .limit(1)
                ).first()
                rows.append(
                    {"question": question or "", "answer": answer.content, "at": answer.created_at}
                )
            return rows
