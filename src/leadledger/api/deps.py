"""What route functions ask for: the `App`, its change writer, and the authenticated user.

Every dependency here is `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool,
and three thread hops per request cost more than the work they do.

`CurrentUser` answers 401 unless the request carries `Authorization: Bearer <token>` for an active user. A
token verified in the last few seconds is answered from memory, on the event loop, without a thread hop:
that keeps authentication off the hot path of a busy client.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from leadledger.domain.changes import Actor
from leadledger.services import auth
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.writer import ChangeWriter

bearer = HTTPBearer(
    auto_error=False,
    description="a token from `leadledger token create USER`, or from POST /api/v1/auth/token with a password",
)


async def get_app(request: Request) -> App:
    app: App = request.app.state.leadledger
    return app


async def get_writer(request: Request) -> ChangeWriter:
    writer: ChangeWriter = request.app.state.writer
    return writer


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Actor:
    if credentials is None:
        raise auth.Unauthenticated("send Authorization: Bearer <token>")
    app: App = request.app.state.leadledger
    actor = auth.cached_token_user(app, credentials.credentials)
    if actor is None:
        actor = await run_in_threadpool(auth.authenticate_token, app, credentials.credentials)
    request.state.user = actor.name  # for the request's log line (LEADLEDGER_LOG=json)
    return actor


async def current_token(
    user: Annotated[Actor, Depends(current_user)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The bearer token the request was authenticated with (a token minted with a login token ends with it)."""
    assert credentials is not None  # current_user refused the request otherwise
    return credentials.credentials


_known_query: dict[int, frozenset[str]] = {}


async def known_query_only(request: Request) -> None:
    """A query parameter the route does not read is a mistake (`?stauts=new`): refuse it instead of ignoring it."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _known_query.get(id(route))
    if allowed is None:
        allowed = frozenset(_query_names(dependant))
        _known_query[id(route)] = allowed
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise Invalid(f"unknown query parameter(s): {', '.join(repr(u[:40]) for u in unknown[:5])}")


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


AppDep = Annotated[App, Depends(get_app)]
WriterDep = Annotated[ChangeWriter, Depends(get_writer)]
CurrentUser = Annotated[Actor, Depends(current_user)]
CurrentToken = Annotated[str, Depends(current_token)]
