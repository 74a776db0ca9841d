"""A fixed KEK ring for download tests, and devices with known codes and keys."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from keyvault import kek

TEST_KEK = base64.b64encode(bytes(range(100, 132))).decode()


@pytest.fixture(autouse=True)
def test_kek_ring(settings) -> Iterator[None]:  # noqa: ANN001
    settings.KAMKEYS_KEKS = f"1:{TEST_KEK}"
    settings.KAMKEYS_KEK_FILE = ""
    kek.reset_cache()
    yield
    kek.reset_cache()
