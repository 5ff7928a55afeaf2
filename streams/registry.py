"""The agents a node runs."""

from __future__ import annotations

from gravitas.agents.base import Agent
from gravitas.agents.ping import PingAgent


def default_agents() -> list[Agent]:
    """A fresh instance of every agent of a full node."""
    return [PingAgent()]
