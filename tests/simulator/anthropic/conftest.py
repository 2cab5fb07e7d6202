"""The Anthropic dialect's client, on a simulator served over HTTP per test."""

from __future__ import annotations

import anthropic
import pytest

from tests.simulator.anthropic.helpers import client_for


@pytest.fixture
def claude(sim_url) -> anthropic.Anthropic:
    return client_for(sim_url)
