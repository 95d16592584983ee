"""Every store implementation passes every conformance check, one test per behaviour."""

from __future__ import annotations

import pytest

from bridge.stores import SessionStore
from bridge.testing import STORE_CHECKS, StoreCheck


@pytest.mark.parametrize(
    "check", STORE_CHECKS, ids=[check.__name__.removeprefix("check_") for check in STORE_CHECKS]
)
async def test_store_conforms(store: SessionStore, check: StoreCheck) -> None:
    await check(store)


def test_every_check_is_collected() -> None:
    assert len(STORE_CHECKS) >= 25
    assert len({check.__name__ for check in STORE_CHECKS}) == len(STORE_CHECKS)
