"""``/api/profile``, ``/api/me`` export and erasure, and ``/api/citations/open``.

The profile is what personalisation learned (view, edit, reset, switch off); opening a cited
source of one of your answers teaches it too.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from chatbot.domain import InvalidInputError
from chatbot.web import profile
from chatbot.web.auth import SESSION_COOKIE
from chatbot.web.context import AnyCaller, Ctx, SignedIn

router = APIRouter(prefix="/api", tags=["profile"])


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Literal["en", "zh"] | None = Field(None, description="Answer language; null = auto")
    expertise: Literal["beginner", "intermediate", "expert"] | None = None
    style: Literal["brief", "detailed"] | None = None
    persona: str | None = Field(None, max_length=profile.PERSONA_MAX, examples=["nurse"])
    personalisation: bool | None = Field(None, description="Switch personalisation on or off")


class InterestPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: float = Field(ge=-profile.WEIGHT_MAX, le=profile.WEIGHT_MAX, examples=[5.0])


class CitationOpen(BaseModel):
    message_id: str = Field(max_length=64)
    chunk_id: str = Field(max_length=128)


@router.get("/profile", summary="Your profile: interests with provenance, facts, on/off")
def get_profile(principal: SignedIn, context: Ctx) -> dict[str, Any]:
    return {"profile": profile.profile_public(context, principal.user_id)}


@router.patch("/profile", summary="Set language, expertise, style or persona (null clears); on/off")
def patch_profile(body: ProfilePatch, principal: SignedIn, context: Ctx) -> dict[str, Any]:
    changes = body.model_dump(include=body.model_fields_set)
    if not changes:
        raise InvalidInputError(
            "nothing to change: give language, expertise, style, persona or personalisation"
        )
    profile.update_profile(context, principal.user_id, changes)
    return {"profile": profile.profile_public(context, principal.user_id)}


@router.patch(
    "/profile/interests/{interest_id}", summary="Set an interest's weight (stops its decay)"
)
def patch_interest(
    interest_id: str, body: InterestPatch, principal: SignedIn, context: Ctx
) -> dict[str, Any]:
    profile.edit_interest(context, principal.user_id, interest_id, body.weight)
    return {"profile": profile.profile_public(context, principal.user_id)}


@router.delete("/profile/interests/{interest_id}", status_code=204, summary="Forget one interest")
def delete_interest(interest_id: str, principal: SignedIn, context: Ctx) -> Response:
    context.container.profiles.delete_interest(user_id=principal.user_id, interest_id=interest_id)
    return Response(status_code=204)


@router.post("/profile/reset", summary="Forget everything learned about you (chats stay)")
def reset_profile(principal: SignedIn, context: Ctx) -> dict[str, Any]:
    context.container.profiles.reset(user_id=principal.user_id)
    return {"profile": profile.profile_public(context, principal.user_id)}


@router.get(
    "/me/export",
    summary="Download everything held about you as JSON",
    response_description="application/json, as an attachment",
)
def export_me(principal: SignedIn, context: Ctx) -> Response:
    data = context.container.privacy.export(principal.user_id)
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="chatbot-my-data.json"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "/me", status_code=204, summary="Delete your account and all your data, then sign out"
)
def delete_me(request: Request, principal: SignedIn, context: Ctx) -> Response:
    context.container.privacy.delete(principal.user_id)
    context.accounts.end_session(request.cookies.get(SESSION_COOKIE))  # (gone with the user)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.post(
    "/citations/open", summary="You opened a cited source of one of your answers (it is learned)"
)
def citation_open(body: CitationOpen, principal: AnyCaller, context: Ctx) -> dict[str, Any]:
    learned = profile.open_citation(context, principal.user_id, body.message_id, body.chunk_id)
    return {"learned": learned}
