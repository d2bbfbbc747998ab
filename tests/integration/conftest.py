"""Fixtures shared by the integration tests (the app, databases and clock are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from leadledger.services import auth
from leadledger.services.app import App


@pytest.fixture(scope="session")
def give_password() -> Callable[[App, Iterable[str], str], None]:
    """Sets one password for several users through `auth.set_password`, hashing it once per session.

    An argon2 hash takes about 0.2 s (64 MiB) on a quiet machine; a fixture giving seven users a password
    spent more time on it than its tests took. Every user still gets a real argon2 hash of that password (the
    same one, salt and all), and logins still verify it: only the repeated hashing is skipped."""
    hashes: dict[str, str] = {}

    def give(app: App, names: Iterable[str], password: str) -> None:
        if password not in hashes:
            hashes[password] = auth.hash_password(password)
        real = auth.hash_password
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(auth, "hash_password", lambda given: hashes[password] if given == password else real(given))
            for name in names:
                auth.set_password(app, name=name, password=password)

    return give
