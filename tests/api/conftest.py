"""Fixtures of the API tests."""

from __future__ import annotations

import pytest

from tests.api.helpers import ApiClient
from tests.conftest import api_token


@pytest.fixture
def api(client, admin_user) -> ApiClient:
    """Calls with an admin's token (admins see every job, including those the factories make without owner)."""
    return ApiClient(client, api_token(admin_user))
