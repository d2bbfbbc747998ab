"""The API bodies of governance: model diffs (and, as they come, reviews, samples and the council pack)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldChangeRead(BaseModel):
    path: str
    old: Any = None
    new: Any = None


class ItemChangeRead(BaseModel):
    section: str
    key: str
    change: str
    fields: list[FieldChangeRead]


class ModelDiffRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    identical: bool
    summary: dict[str, dict[str, int]]
    changes: list[ItemChangeRead]
