"""The service layer shared by the CLI, the web UI, the HTTP API and the widget."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

from chatbot.domain import (
    ChatEvent,
    DoneEvent,
    HistoryTurn,
    InvalidInputError,
    Recommendation,
    RetrievedChunk,
    SourcesEvent,
    TokenEvent,
    Understanding,
)
from chatbot.personalisation.service import DEFAULT_STYLE, ProfileService
from chatbot.pipeline.answer import format_sources, language_name
from chatbot.pipeline.chain import Pipeline
from chatbot.pipeline.citations import (
    closest_passage,
    extract_citations,
    is_refusal,
    says_nothing,
)
from chatbot.pipeline.overview import describe_collection
from chatbot.ports import Catalogue, ConversationStore, PersonalSignals, RetrievalResult
from chatbot.settings import ChatSettings
from chatbot.text import unmatched_words


class ChatService:
    """Answers a user's message in a conversation and records the turn for feedback."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        conversations: ConversationStore,
        settings: ChatSettings,
        top_k: int,
        profiles: ProfileService | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.catalogue = catalogue
        self.conversations = conversations
        self.settings = settings
        self.top_k = top_k
        self.profiles = profiles

    def stream(
        self,
        *,
        user_id: str,
        message: str,
        acls: Sequence[str],
        conversation_id: str | None = None,
        personalise: bool = True,
    ) -> Iterator[ChatEvent]:
        """Stream an answer: sources first, then tokens, then a ``DoneEvent`` with ids.

        ``personalise=False`` answers the same question without the profile, to compare.
        """
        message = self._validate(message)
        profiles = (
            self.profiles
            if personalise and self.profiles and self.profiles.active(user_id)
            else None
        )
        style, language_override, personal = DEFAULT_STYLE, None, None
        applied: tuple[str, ...] = ()  # the profile's answer preferences that were set
        if profiles is not None:
            prefs = profiles.preferences(user_id)
            style, language_override, applied = prefs.style, prefs.language, prefs.applied
            personal = profiles.signals(user_id, acls)
        started = time.perf_counter()
        latencies: dict[str, float] = {}
        if conversation_id:
            conversation = self.conversations.get_conversation(
                user_id=user_id, conversation_id=conversation_id
            )
        else:
            conversation = self.conversations.create_conversation(user_id=user_id)
        history = [
            HistoryTurn(m.role, m.content)  # type: ignore[arg-type]
            for m in self.conversations.list_messages(
                user_id=user_id, conversation_id=conversation.id, limit=self.settings.history_turns
            )
        ]
        self.conversations.add_message(
            user_id=user_id, conversation_id=conversation.id, role="user", content=message
        )

        t = time.perf_counter()
        understanding = self.pipeline.understand.invoke({"message": message, "history": history})
        if language_override:
            understanding = replace(understanding, language=language_override)
        latencies["understand_ms"] = _ms(t)

        refusals: dict[str, str] = self.pipeline.answer_prompt.extras.get("refusals", {})
        context: tuple[RetrievedChunk, ...] = ()
        unmatched: list[str] = []  # question words no passage given to the model contains
        retrieval: RetrievalResult | None = None
        gate = ""
        if understanding.intent == "chitchat":
            greetings: dict[str, str] = self.pipeline.answer_prompt.extras.get("chitchat", {})
            answer = greetings.get(understanding.language, greetings.get("en", "Hello!"))
            gate = "chitchat"
            yield TokenEvent(answer)
        elif understanding.intent == "overview" and self.catalogue is not None:
            texts = self.pipeline.answer_prompt.extras.get("overview", {})
            answer = describe_collection(
                self.catalogue.documents_for(acls),
                understanding.language,
                texts.get(understanding.language) or texts["en"],
            )
            gate = "overview"
            yield TokenEvent(answer)
        else:
            t = time.perf_counter()
            retrieval = self.pipeline.retrieve.invoke(
                {
                    "understanding": understanding,
                    "acls": list(acls),
                    "top_k": self.top_k,
                    "personal": personal,
                }
            )
            latencies["retrieve_ms"] = _ms(t)
            context = retrieval.chunks[: self.settings.context_chunks]
            unmatched = unmatched_words(
                understanding.standalone_question, (c.text for c in context)
            )
            yield SourcesEvent(context)
            if not context or (
                retrieval.best_vector_similarity < self.settings.min_relevance
                and retrieval.keyword_matches == 0
            ):
                answer, gate = _localised(refusals, understanding.language), "low_relevance"
                yield TokenEvent(answer)
            else:
                answer = yield from self._generate(
                    understanding, context, style, latencies, unmatched
                )
                if says_nothing(answer):  # e.g. "[1] [2]": show what [1] says instead
                    answer, gate = self._closest_passage(answer, understanding, context)

        citations = extract_citations(answer, context)
        refused = gate == "low_relevance" or (gate != "overview" and is_refusal(answer))
        if refused and len(answer) < 80:
            answer = _localised(refusals, understanding.language)
        latencies["total_ms"] = _ms(started)
        trace = self._trace(understanding, retrieval, context, gate, latencies, refused)
        trace["personalisation"] = _personal_trace(personal, "; ".join(applied) or None)
        if unmatched:
            trace["unmatched_words"] = unmatched
        saved = self.conversations.add_message(
            user_id=user_id,
            conversation_id=conversation.id,
            role="assistant",
            content=answer,
            citations=[asdict(c) for c in citations],
            refused=refused,
            trace=trace,
        )
        recommendations: tuple[Recommendation, ...] = ()
        explanation: tuple[str, ...] = ()
        if self.profiles is not None:
            if profiles is not None:  # nothing is learned while off, nor from a comparison
                self.profiles.learn_from_turn(
                    user_id=user_id,
                    message_id=saved.id,
                    user_message=message,
                    question=understanding.standalone_question,
                    context=context,
                    citations=citations,
                    refused=refused or gate in ("chitchat", "overview"),  # nothing to learn
                )
            explanation = self.profiles.explain(trace, context)
            seen = [c.doc_id for c in citations] + [c.doc_id for c in context[:1]]
            recommendations = self.profiles.recommend(
                user_id=user_id,
                acls=acls,
                context=context,
                seen_doc_ids=seen,
                language=understanding.language,
            )
        yield DoneEvent(
            conversation.id,
            saved.id,
            answer,
            citations,
            refused,
            trace,
            recommendations,
            explanation,
        )

    def ask(self, **kwargs: Any) -> DoneEvent:
        """Run :meth:`stream` to the end and return the final event."""
        done = None
        for event in self.stream(**kwargs):
            if isinstance(event, DoneEvent):
                done = event
        assert done is not None
        return done

    def rate(
        self,
        *,
        user_id: str,
        message_id: str,
        rating: str,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Any:
        """Record (or update) the user's rating of one of their answers, and learn from it."""
        feedback = self.conversations.rate_message(
            user_id=user_id, message_id=message_id, rating=rating, reason=reason, comment=comment
        )
        if self.profiles is not None and self.profiles.active(user_id):
            cited = self.conversations.get_message(user_id=user_id, message_id=message_id).citations
            self.profiles.learn_from_rating(
                user_id=user_id,
                feedback_id=feedback.id,
                rating=rating,
                reason=reason,
                doc_ids=[c["doc_id"] for c in cited or []],
            )
        return feedback

    def _generate(
        self,
        understanding: Understanding,
        context: Sequence[RetrievedChunk],
        style: str,
        latencies: dict[str, float],
        unmatched: Sequence[str] = (),
    ) -> Generator[TokenEvent, None, str]:
        t = time.perf_counter()
        parts: list[str] = []
        variables = {
            "language_name": language_name(understanding.language),
            "style": style,
            "sources": format_sources(context, self.settings.source_max_chars),
            "question": understanding.standalone_question,
        }
        if "unmatched" in self.pipeline.answer_prompt.variables:
            variables["unmatched"] = ", ".join(unmatched) or "none"
        for piece in self.pipeline.answer.stream(variables):
            if not piece:
                continue
            if not parts:
                latencies["first_token_ms"] = _ms(t)
            parts.append(piece)
            yield TokenEvent(piece)
        latencies["answer_ms"] = _ms(t)
        return "".join(parts).strip()

    def _closest_passage(
        self,
        answer: str,
        understanding: Understanding,
        context: Sequence[RetrievedChunk],
    ) -> tuple[str, str]:
        """What replaces a reply with no words in it: the passage the model pointed at."""
        number, passage = closest_passage(answer, understanding.standalone_question, context)
        leads: dict[str, str] = self.pipeline.answer_prompt.extras.get(
            "closest_passage", {"en": "The closest passage in the sources says:"}
        )
        lead = _localised(leads, understanding.language)
        return f"{lead} “{passage}” [{number}]", "closest_passage"

    def _validate(self, message: str) -> str:
        text = (message or "").replace("\x00", "").strip()
        if not text:
            raise InvalidInputError("the message is empty")
        if len(text) > self.settings.max_message_chars:
            raise InvalidInputError(
                f"the message is too long ({len(text)} characters; the limit is "
                f"{self.settings.max_message_chars})"
            )
        return text

    def _trace(
        self,
        understanding: Understanding,
        retrieval: RetrievalResult | None,
        context: Sequence[RetrievedChunk],
        gate: str,
        latencies: dict[str, float],
        refused: bool,
    ) -> dict[str, Any]:
        return {
            "understanding": asdict(understanding),
            "retrieval": retrieval.trace if retrieval else None,
            "context_chunk_ids": [c.chunk_id for c in context],
            "prompts": [self.pipeline.understand_prompt.ref, self.pipeline.answer_prompt.ref],
            "model": self.pipeline.model_name,
            "gate": gate or None,
            "refused": refused,
            "latency_ms": latencies,
        }


def _personal_trace(personal: PersonalSignals | None, style: str | None) -> dict[str, Any] | None:
    if personal is None and style is None:
        return None
    top = sorted((personal.interests if personal else {}).items(), key=lambda kv: -kv[1])[:8]
    return {
        "interests": {term: round(weight, 3) for term, weight in top},
        "labels": dict(personal.labels) if personal else {},
        "doc_factors": dict(personal.doc_factors) if personal else {},
        "doc_reasons": dict(personal.doc_reasons) if personal else {},
        # what an ambiguous question may be expanded with (the retrieval trace says if it was)
        "query_expansion": {
            language: [term for term, _ in terms[:5]]
            for language, terms in (personal.expansion if personal else {}).items()
        },
        "style": style,
    }


def _localised(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or "I don't know."


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
