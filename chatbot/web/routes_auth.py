"""``/api/auth/*`` and ``/api/me``: sign-up, login and logout with one HttpOnly session cookie."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from chatbot.web.auth import SESSION_COOKIE, Principal, UserRow
from chatbot.web.context import AnyCaller, Ctx, WebContext, client_ip, own_origin
from chatbot.web.errors import ApiError

router = APIRouter(prefix="/api", tags=["accounts"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])


def user_public(user: UserRow | Principal) -> dict[str, Any]:
    if isinstance(user, Principal):
        return {
            "id": user.user_id,
            "username": user.username,
            "role": user.role,
            "is_anonymous": user.is_anonymous,
            "site_id": user.site_id,
        }
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "is_anonymous": user.is_anonymous,
        "site_id": None,
    }


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin.lower() != own_origin(request):
        raise ApiError(403, "sign in on this site, not from another origin", code="cross_origin")


def set_session_cookie(
    response: Response, request: Request, context: WebContext, user_id: str
) -> None:
    token, max_age = context.accounts.start_session(user_id)
    mode = context.container.settings.web.cookie_secure
    secure = mode == "always" or (mode == "auto" and request.url.scheme == "https")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


@router.post("/auth/signup", status_code=201, summary="Create an account and sign in")
def signup(body: Credentials, request: Request, response: Response, context: Ctx) -> dict[str, Any]:
    _same_origin(request)
    if not context.container.settings.web.allow_signup:
        raise ApiError(403, "sign-up is disabled on this server; ask an administrator")
    user = context.accounts.signup(body.username, body.password)
    set_session_cookie(response, request, context, user.id)
    return {"user": user_public(user)}


@router.post("/auth/login", summary="Sign in (5 failures a minute per name lock it for a minute)")
def login(body: Credentials, request: Request, response: Response, context: Ctx) -> dict[str, Any]:
    _same_origin(request)
    user = context.accounts.login(body.username, body.password, client_ip=client_ip(request))
    set_session_cookie(response, request, context, user.id)
    return {"user": user_public(user)}


@router.post("/auth/logout", status_code=204, summary="Sign out (ends the session everywhere)")
def logout(request: Request, context: Ctx) -> Response:
    _same_origin(request)
    context.accounts.end_session(request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", summary="Who am I")
def me(principal: AnyCaller) -> dict[str, Any]:
    return {"user": user_public(principal)}
