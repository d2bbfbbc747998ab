"""The API bodies of accounts: leads grouped by company, and seed 000's account-based review flag."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AccountRead(BaseModel):
    key: str = Field(description="the account: normalised company name, else the work e-mail domain")
    company: str | None = Field(description="one of the company names its leads carry (alphabetically first)")
    leads: int = Field(description="its leads you may see")
    statuses: dict[str, int] = Field(description="those leads per status")
    flagged: bool = Field(description="flagged for account-based review now (raised, not cleared, not dismissed)")
    raised_at: datetime | None = Field(description="when the live flag was raised")
    dismissed_at: datetime | None
    dismissed_by: str | None


class AccountPage(BaseModel):
    items: list[AccountRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class AccountMemberRead(BaseModel):
    id: str
    name: str | None
    email: str | None
    company: str | None
    status: str
    reason: str | None
    owner: str | None


class AccountDetailRead(AccountRead):
    members: list[AccountMemberRead] = Field(description="its leads you may see, by id")


class AccountDismissedRead(BaseModel):
    key: str
    dismissed_at: datetime
    dismissed_by: str
