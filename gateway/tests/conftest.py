"""The gateway's test fixture: one app against in-process doubles per test module."""

from collections.abc import AsyncIterator

import pytest

from gateway.tests.harness import Setup, serving_setup


@pytest.fixture(scope="module")
async def setup() -> AsyncIterator[Setup]:
    async with serving_setup() as served:
        yield served
