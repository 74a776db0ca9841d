"""API fixtures: tokens made through the service (the page is tested on its own), a client
that sends one, and keyed devices of two distributors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from api import services
from devices.models import Device
from keyvault.services import store_device_keys
from tests.factories import DeviceFactory, web

ALL_SCOPES = ["devices:read", "keys:read", "readrights:write"]


def key_of(number: int) -> bytes:
    return bytes([0xB0 + number % 16]) + bytes(range(2, 17))


@pytest.fixture
def make_token() -> Callable[..., str]:
    def make(user: Any, scopes: list[str] | None = None, **kwargs: Any) -> str:
        return services.create_token(
            user,
            name=kwargs.pop("name", "head-end"),
            scopes=scopes or ALL_SCOPES,
            context=web(user),
            **kwargs,
        ).secret

    return make


class ApiClient:
    """Django's test client with the bearer token on every request and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        self.client = Client(raise_request_exception=False)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(path, params or {}, headers=self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, body, content_type="application/json", headers=self.headers)


@pytest.fixture
def api_for(make_token: Callable[..., str]) -> Callable[..., ApiClient]:
    def make(user: Any, scopes: list[str] | None = None) -> ApiClient:
        return ApiClient(make_token(user, scopes))

    return make


@pytest.fixture
def keyed_x(org_x: Any) -> list[Device]:
    devices = DeviceFactory.create_batch(5, owner=org_x)
    for number, device in enumerate(devices):
        store_device_keys(device, {"DEK": key_of(number)})
    return devices


@pytest.fixture
def keyed_y(org_y: Any) -> list[Device]:
    devices = DeviceFactory.create_batch(2, owner=org_y, device_type="flowIQ 2200")
    for number, device in enumerate(devices, start=8):
        store_device_keys(device, {"DEK": key_of(number)})
    return devices


def streamed(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content
