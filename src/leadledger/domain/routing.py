"""Choosing an owner from a pool: round-robin, weighted, least-loaded, with capacity caps and exclusions.

Deterministic: the same state, loads and seed give the same choice. Weighted and plain round-robin use
smooth weighted round-robin (each member's share over N assignments stays within one of N x weight / total),
so distribution is fair under any load; least-loaded breaks ties by a seeded hash of the lead id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteChoice:
    owner: str | None
    state: dict[str, float]  # the pool's round-robin state after the choice
    why: str


def choose_owner(
    *,
    strategy: str,
    members: Sequence[str],
    weights: Mapping[str, int],
    state: Mapping[str, float],
    loads: Mapping[str, int],
    capacity: int | None,
    exclude: frozenset[str] = frozenset(),
    seed: int = 0,
    lead_id: str = "",
) -> RouteChoice:
    """Pick an owner among eligible members (not excluded, under capacity); None when nobody is eligible."""
    eligible = [m for m in members if m not in exclude and (capacity is None or loads.get(m, 0) < capacity)]
    new_state = {m: float(state.get(m, 0.0)) for m in members}
    if not eligible:
        why = "every member is excluded or at capacity" if members else "the pool has no active members"
        return RouteChoice(None, new_state, why)
    if strategy == "least_loaded":

        def rank(member: str) -> tuple[float, str]:
            weight = max(1, weights.get(member, 1))
            return (loads.get(member, 0) / weight, _tiebreak(seed, lead_id, member))

        chosen = min(eligible, key=rank)
        return RouteChoice(chosen, new_state, f"least loaded ({loads.get(chosen, 0)} open leads)")
    use_weights = strategy == "weighted"
    total = 0
    for member in eligible:
        weight = max(1, weights.get(member, 1)) if use_weights else 1
        new_state[member] += weight
        total += weight
    chosen = max(eligible, key=lambda m: (new_state[m], -eligible.index(m)))
    new_state[chosen] -= total
    return RouteChoice(chosen, new_state, "weighted round-robin" if use_weights else "round-robin")


def _tiebreak(seed: int, lead_id: str, member: str) -> str:
    return hashlib.blake2b(f"{seed}:{lead_id}:{member}".encode(), digest_size=8).hexdigest()
