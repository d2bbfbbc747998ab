"""Logging in and out. The password check is `services.auth`'s (argon2, throttling), through `services.sessions`.

The login form has its own CSRF token (a random cookie echoed in a hidden field), so another site cannot log a
visitor in under its own account; after login the session's token protects every other form.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.services import auth, sessions
from leadledger.web.context import CurrentViewer, MaybeViewer, State
from leadledger.web.render import page

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//evil.example` or `https://…` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def home_for(role: str) -> str:
    return "/work" if role in ("rep", "manager") else "/leads"


@router.get("/", include_in_schema=False)
async def home(viewer: CurrentViewer) -> Response:
    return RedirectResponse(home_for(viewer.role), status_code=303)


@router.get("/login")
async def login_form(request: Request, state: State, viewer: MaybeViewer,
                     next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:  # fmt: skip
    if viewer is not None:
        return RedirectResponse(safe_next(next) if next else home_for(viewer.role), status_code=303)
    token = request.cookies.get(state.options.login_cookie) or secrets.token_urlsafe(24)
    response = page(request, "login.html", csrf=token, next=safe_next(next), error=None)
    _set_login_cookie(response, state.options, token)
    return response


@router.post("/login")
async def login(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    expected = request.cookies.get(state.options.login_cookie, "")
    target = safe_next(next)
    if not expected or not hmac.compare_digest(expected, csrf):
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", status_code=403, csrf=token, next=target, username=username,
                        error="The login form expired. Please try again.")  # fmt: skip
        _set_login_cookie(response, state.options, token)
        return response
    try:
        secret, session = await run_in_threadpool(
            sessions.start_session,
            state.app,
            name=username.strip(),
            password=password,
            client=request.headers.get("user-agent"),
        )
    except (auth.Unauthenticated, auth.TooManyAttempts) as exc:
        status = 429 if isinstance(exc, auth.TooManyAttempts) else 401
        message = str(exc) if status == 429 else "Wrong user name or password."
        return page(request, "login.html", status_code=status, csrf=expected, next=target, username=username,
                    error=message)  # fmt: skip
    done = RedirectResponse(target if target != "/" else home_for(session.user.role), status_code=303)
    done.set_cookie(
        state.options.cookie,
        secret,
        httponly=True,
        samesite="lax",
        secure=state.options.secure_cookies,
        path="/",
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
    )
    done.delete_cookie(state.options.login_cookie, path="/")
    return done


@router.post("/logout")
async def logout(request: Request, state: State, viewer: CurrentViewer) -> Response:
    secret = request.cookies.get(state.options.cookie, "")
    await run_in_threadpool(sessions.end_session, state.app, secret)
    response: Response = RedirectResponse("/login", status_code=303)
    if request.headers.get("hx-request") == "true":
        response = Response(status_code=204, headers={"HX-Redirect": "/login"})
    response.delete_cookie(state.options.cookie, path="/", secure=state.options.secure_cookies, httponly=True)
    return response


def _set_login_cookie(response: Response, options: object, token: str) -> None:
    secure = getattr(options, "secure_cookies", False)
    name = getattr(options, "login_cookie", "ll_login")
    response.set_cookie(name, token, httponly=True, samesite="strict", secure=secure, path="/", max_age=3600)
