"""Input checks shared by the repositories.

Each returns the clean value or raises ``InvalidInputError`` with a message that says what to fix.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from chatbot.db.models import (
    AUTO_TITLE_LENGTH,
    COMMENT_MAX_LENGTH,
    MESSAGE_ROLES,
    RATINGS,
    TITLE_MAX_LENGTH,
    USER_ROLES,
    USERNAME_MAX_LENGTH,
    UserRole,
)
from chatbot.domain import FEEDBACK_REASONS, InvalidInputError, Role

USER_NOT_FOUND = "user not found"


def has_control_chars(text: str) -> bool:
    """Control, format (zero-width), surrogate, private-use or unassigned characters."""
    return any(unicodedata.category(ch).startswith("C") or ch in "\u2028\u2029" for ch in text)


def valid_username(username: str) -> str:
    return _one_visible_line(username, "username", USERNAME_MAX_LENGTH)


def valid_title(title: str) -> str:
    return _one_visible_line(title, "title", TITLE_MAX_LENGTH)


def _one_visible_line(value: str, what: str, max_length: int) -> str:
    """``value`` stripped; not empty, at most ``max_length`` long, no invisible characters."""
    clean = value.strip()
    if not clean:
        raise InvalidInputError(f"{what} must not be empty")
    if len(clean) > max_length:
        raise InvalidInputError(f"{what} must be at most {max_length} characters")
    if has_control_chars(clean):
        raise InvalidInputError(f"{what} must not contain control or invisible characters")
    return clean


def auto_title(content: str) -> str:
    """The first words of a message as a one-line title of at most AUTO_TITLE_LENGTH chars."""
    visible = "".join(" " if has_control_chars(ch) else ch for ch in content)
    words = " ".join(visible.split())
    if len(words) <= AUTO_TITLE_LENGTH:
        return words
    return words[: AUTO_TITLE_LENGTH - 1].rstrip() + "…"


def valid_user_role(role: str) -> UserRole:
    if role not in USER_ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(USER_ROLES)}")
    return role


def check_message(role: str, content: str, trace: Mapping[str, Any] | None) -> Role:
    """Validate a new message; returns its role."""
    if role not in MESSAGE_ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(MESSAGE_ROLES)}")
    if "\x00" in content:  # PostgreSQL text cannot hold NUL
        raise InvalidInputError("content must not contain NUL characters")
    if trace is not None and role != "assistant":
        raise InvalidInputError("only assistant messages carry a trace")
    return role


def check_feedback(rating: str, reason: str | None, comment: str | None) -> str | None:
    """Validate a rating; returns the comment stripped, or None if it is blank."""
    if rating not in RATINGS:
        raise InvalidInputError(f"rating must be one of {', '.join(RATINGS)}")
    if reason is not None and reason not in FEEDBACK_REASONS:
        raise InvalidInputError(f"reason must be one of {', '.join(FEEDBACK_REASONS)}")
    if comment is None or not comment.strip():
        return None
    clean = comment.strip()
    if len(clean) > COMMENT_MAX_LENGTH:
        raise InvalidInputError(f"comment must be at most {COMMENT_MAX_LENGTH} characters")
    if "\x00" in clean:
        raise InvalidInputError("comment must not contain NUL characters")
    return clean
