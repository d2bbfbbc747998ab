"""Accounts: leads grouped by company (or work e-mail domain), and the review flag of seed 000.

Thin routes over `leadledger.services.accounts`, which scopes every answer like the lead list (a rep sees the
accounts of their leads, a manager their teams', ops all) and lets only managers and ops dismiss a flag.
Accounts are listed by key; the cursor is the last key of the previous page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.schemas_accounts import AccountDetailRead, AccountDismissedRead, AccountPage
from leadledger.services import accounts as account_service

router = APIRouter(tags=["accounts"])
KEY_MAX = 320
AccountKey = Annotated[
    str, Path(min_length=1, max_length=KEY_MAX, pattern=r"^[^\x00/]+$", description="the account's key (GET /accounts)")
]


@router.get("/accounts", response_model=AccountPage, summary="Accounts with a lead you may see, by key, and their flag")
def list_accounts(
    user: CurrentUser,
    app: AppDep,
    flagged: Annotated[
        bool | None, Query(description="true: only accounts flagged for review; false: only those not")
    ] = None,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=KEY_MAX, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = account_service.list_accounts(app, actor=user.name, flagged=flagged, after=cursor, limit=limit + 1)
    return {"items": rows[:limit], "next_cursor": rows[limit - 1]["key"] if len(rows) > limit else None}


@router.get(
    "/accounts/{key}",
    response_model=AccountDetailRead,
    responses=errors(404),
    summary="An account: its leads you may see (status, reason, owner) and its review flag",
)
def show_account(key: AccountKey, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return account_service.show_account(app, key, actor=user.name)


@router.post(
    "/accounts/{key}/dismiss",
    response_model=AccountDismissedRead,
    responses=errors(404),
    summary="Dismiss the account's review flag (managers and ops; it stays down while the condition lasts)",
)
def dismiss_account_flag(key: AccountKey, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return account_service.dismiss_flag(app, key, actor=user.name)
