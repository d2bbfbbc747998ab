"""The board: a column per open status, the viewer's (or a team's) leads as cards, moved by drag and drop or
with the keyboard through the same "Move …" menu the list uses. Every move is an ordinary status change: the
same checks, the same in-place form when the target status asks for data, the same refusals.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leadledger.domain.statusmodel import StatusModel
from leadledger.services import leadquery, people
from leadledger.services.leadquery import UNOWNED, LeadFilter, LeadPage
from leadledger.web.context import CurrentViewer, State, Viewer, WebState
from leadledger.web.pages.leads import targets_for
from leadledger.web.render import page

router = APIRouter()
CARDS = 25
BOARD_CATEGORIES = ("open", "active", "qualified")  # work in progress; the closed statuses are where cards end


def columns(model: StatusModel) -> list[str]:
    return [s.key for s in model.statuses.values() if s.category in BOARD_CATEGORIES]


def _whose(viewer: Viewer, request: Request, teams: list[str]) -> tuple[str, LeadFilter]:
    """`mine` (and unowned), `team:NAME`, or `all` (everything the viewer may see)."""
    wanted = request.query_params.get("whose") or ("mine" if viewer.role == "rep" or not teams else f"team:{teams[0]}")
    if wanted.startswith("team:") and wanted[5:] in teams:
        return wanted, LeadFilter(teams=(wanted[5:],))
    if wanted == "all":
        return wanted, LeadFilter()
    return "mine", LeadFilter(owners=(viewer.name, UNOWNED))


def _board(state: WebState, viewer: Viewer, base: LeadFilter) -> list[tuple[str, LeadPage]]:
    found = []
    for key in columns(state.model):
        where = LeadFilter(statuses=(key,), exact_status=True, owners=base.owners, teams=base.teams)
        found.append((key, leadquery.find_leads(state.app, viewer.scope, where, sort="longest_in_status", limit=CARDS)))
    return found


@router.get("/board")
async def board(request: Request, viewer: CurrentViewer, state: State) -> Response:
    if viewer.scope.everything:
        teams = [t["name"] for t in await run_in_threadpool(people.list_teams, state.app)]
    else:
        teams = sorted(viewer.scope.teams)
    whose, base = _whose(viewer, request, teams)
    lanes = await run_in_threadpool(_board, state, viewer, base)
    model = state.model
    cards: dict[str, list[dict[str, Any]]] = {}
    for _, lane in lanes:
        for lead in lane.rows:
            allowed = targets_for(model, viewer, lead)
            lead["targets"] = " ".join(t["key"] for t in allowed)
            lead["forms"] = " ".join(t["key"] for t in allowed if t["form"])
    template = "board/board.html" if request.headers.get("hx-target") == "board" else "board/page.html"
    return page(request, template, title="Board", lanes=lanes, whose=whose, teams=teams, model=model, cards=cards,
                viewer_scope=viewer.scope, limit=CARDS)  # fmt: skip
