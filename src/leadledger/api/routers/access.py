"""Logging in, tokens and users: thin routes over `services.auth`, which holds every rule.

A password is exchanged once for a bearer token that expires (POST /auth/token); integrations use tokens
ops creates for them (`leadledger token create USER` or POST /tokens with `user`). Ops manages users.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from leadledger.api.deps import AppDep, CurrentToken, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.schemas import (
    NAME_PATTERN,
    LoginCreate,
    MeRead,
    TokenCreate,
    TokenIssuedRead,
    TokenRead,
    UserCreate,
    UserRead,
)
from leadledger.services import auth, people

router = APIRouter()
UserPath = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.post(
    "/auth/token",
    status_code=201,
    response_model=TokenIssuedRead,
    responses=errors(429),
    tags=["auth"],
    summary="Exchange a user name and password for a bearer token (expires after 12 hours)",
)
def login(body: LoginCreate, app: AppDep, request: Request) -> dict[str, Any]:
    return auth.login(app, name=body.username, password=body.password, address=_address(request))


def _address(request: Request) -> str | None:
    """The client's address (behind a proxy, Uvicorn reads it from X-Forwarded-For when the proxy is trusted)."""
    return request.client.host if request.client is not None else None


@router.get("/me", response_model=MeRead, tags=["auth"], summary="Who the token belongs to")
def me(user: CurrentUser) -> dict[str, str]:
    return {"name": user.name, "role": user.role}


@router.get("/tokens", response_model=list[TokenRead], tags=["auth"], summary="Your tokens (ops: anyone's)")
def list_tokens(
    user: CurrentUser,
    app: AppDep,
    owner: Annotated[str | None, Query(alias="user", pattern=NAME_PATTERN)] = None,
    include_revoked: bool = False,
) -> list[dict[str, Any]]:
    return auth.list_tokens(app, actor=user.name, user=owner, include_revoked=include_revoked)


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenIssuedRead,
    responses=errors(429),  # `password` is checked like a login, throttle included
    tags=["auth"],
    summary="Create a token for yourself (ops: for anyone, e.g. an integration); shown once. Made with a login "
    "token, it ends with that login unless `password` is given",
)
def create_token(
    body: TokenCreate, user: CurrentUser, token: CurrentToken, app: AppDep, request: Request
) -> dict[str, Any]:
    lifetime = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    return auth.issue_token(
        app,
        user=body.user or user.name,
        actor=user.name,
        name=body.name,
        expires_in=lifetime,
        minted_with=token,
        password=body.password,
        address=_address(request),
    )


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenRead,
    responses=errors(404),
    tags=["auth"],
    summary="Revoke a token (yours; ops: anyone's)",
)
def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**62)], user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return auth.revoke_token(app, token_id=token_id, actor=user.name)


@router.get("/users", response_model=list[UserRead], tags=["users"], summary="Users and their roles (managers, ops)")
def list_users(user: CurrentUser, app: AppDep) -> list[dict[str, Any]]:
    auth.require_role(app, user.name, {"manager", "ops"}, "list users")
    return people.list_users(app)


@router.post("/users", status_code=201, response_model=UserRead, tags=["users"], summary="Add a user (ops)")
def add_user(body: UserCreate, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return auth.add_user(
        app, actor=user.name, name=body.name, role=body.role, team=body.team, email=body.email, password=body.password
    )


@router.post(
    "/users/{name}/disable",
    response_model=UserRead,
    responses=errors(404),
    tags=["users"],
    summary="Disable a user (ops): their tokens stop working",
)
def disable_user(name: UserPath, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return auth.set_user_active(app, actor=user.name, name=name, active=False)


@router.post(
    "/users/{name}/enable",
    response_model=UserRead,
    responses=errors(404),
    tags=["users"],
    summary="Enable a user (ops)",
)
def enable_user(name: UserPath, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return auth.set_user_active(app, actor=user.name, name=name, active=True)


@router.put(
    "/users/{name}/password",
    status_code=204,
    response_class=Response,
    responses=errors(404, 429),  # your current password is checked like a login, throttle included
    tags=["users"],
    summary="Set a password (your own, giving the current one; ops: anyone's but an integration's)",
)
def set_password(
    name: UserPath,
    user: CurrentUser,
    app: AppDep,
    request: Request,
    password: Annotated[str, Body(embed=True, min_length=10, max_length=1024)],
    current_password: Annotated[
        str | None,
        Body(embed=True, max_length=1024, description="your current password, when you replace your own"),
    ] = None,
) -> Response:
    auth.set_password(app, name=name, password=password, actor=user.name, current_password=current_password,
                      address=_address(request))  # fmt: skip
    return Response(status_code=204)
