"""The agents a node runs."""

from __future__ import annotations

from gravitas.agents.base import Agent
from gravitas.agents.discovery import DiscoveryAgent
from gravitas.agents.harmonize import HarmonizeAgent
from gravitas.agents.ingest import IngestAgent
from gravitas.agents.methane import MethaneAgent
from gravitas.agents.modules.agent import ModuleAgent, ModuleRegistryAgent
from gravitas.agents.onboarding import OnboardingAgent
from gravitas.agents.openeo_jobs import OpenEOJobAgent
from gravitas.agents.overviews import OverviewAgent
from gravitas.agents.parking import ParkingAgent
from gravitas.agents.ping import PingAgent
from gravitas.agents.registrar import RegistrarAgent
from gravitas.agents.training.coordinator import TrainingAgent
from gravitas.agents.training.participant import ParticipantAgent
from gravitas.agents.workflows.agent import WorkflowAgent, WorkflowIntakeAgent
from gravitas.schemas.errors import ConfigError


def default_agents() -> list[Agent]:
    """A fresh instance of every agent of a full node."""
    return [
        PingAgent(),
        IngestAgent(),
        OverviewAgent(),
        DiscoveryAgent(),
        RegistrarAgent(),
        OnboardingAgent(),
        ParkingAgent(),
        MethaneAgent(),
        HarmonizeAgent(),
        TrainingAgent(),
        ParticipantAgent(),
        ModuleRegistryAgent(),
        ModuleAgent(),
        WorkflowIntakeAgent(),
        WorkflowAgent(),
        OpenEOJobAgent(),
    ]


def select_agents(names: tuple[str, ...] | list[str]) -> list[Agent]:
    """The agents named (all of them for an empty selection); unknown names are an error."""
    agents = default_agents()
    if not names:
        return agents
    known = {a.name: a for a in agents}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown agent(s) {unknown} in GRAVITAS_AGENTS; known: {sorted(known)}")
    return [known[n] for n in names]
