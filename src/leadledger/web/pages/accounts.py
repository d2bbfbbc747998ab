"""Accounts: leads grouped by company (or work e-mail domain), the ones flagged for account-based review (seed
000: several leads of one company all in Nurture), an account's leads, and the manager's Dismiss.

Reads and the dismissal go through `services.accounts`, which scopes them like the lead list and lets only
managers and ops dismiss; this page only turns them into HTML.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.services import accounts
from leadledger.web.context import CurrentViewer, State
from leadledger.web.pages.leads import set_flash
from leadledger.web.render import page

router = APIRouter()
PAGE = 50
KEY_MAX = 320
AccountKey = Annotated[str, Path(min_length=1, max_length=KEY_MAX, pattern=r"^[^\x00/]+$")]


def account_url(key: str) -> str:
    return "/accounts/" + quote(key, safe="")


@router.get("/accounts")
async def account_list(
    request: Request,
    viewer: CurrentViewer,
    state: State,
    flagged: Annotated[str | None, Query(max_length=5)] = None,
    after: Annotated[str | None, Query(min_length=1, max_length=KEY_MAX)] = None,
) -> Response:
    only_flagged = flagged in ("1", "true", "on")
    rows = await run_in_threadpool(lambda: accounts.list_accounts(
        state.app, actor=viewer.name, flagged=True if only_flagged else None, after=after, limit=PAGE + 1))  # fmt: skip
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    params = {"flagged": ["1"]} if only_flagged else {}
    return page(request, "accounts/list.html", title="Accounts", rows=rows, only_flagged=only_flagged, after=after,
                params=params, next_after=rows[-1]["key"] if more else None, account_url=account_url)  # fmt: skip


@router.get("/accounts/{key}")
async def account_page(request: Request, key: AccountKey, viewer: CurrentViewer, state: State) -> Response:
    data = await run_in_threadpool(lambda: accounts.show_account(state.app, key, actor=viewer.name))
    return page(request, "accounts/page.html", title=data["company"] or key, account=data, model=state.model,
                account_url=account_url)  # fmt: skip


@router.post("/accounts/{key}/dismiss")
async def account_dismiss(key: AccountKey, viewer: CurrentViewer, state: State) -> Response:
    done = await run_in_threadpool(lambda: accounts.dismiss_flag(state.app, key, actor=viewer.name))
    response = RedirectResponse(account_url(key), status_code=303)
    set_flash(response, "ok", f"Review flag of {key} dismissed by {done['dismissed_by']}.")
    return response
