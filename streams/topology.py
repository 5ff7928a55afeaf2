"""Topics, the events they carry, their keys and partition counts, declared once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gravitas.schemas import agent_answers as aa
from gravitas.schemas import events as ev
from gravitas.schemas import training as tr
from gravitas.schemas import workflows as wf
from gravitas.schemas.base import Event
from gravitas.schemas.errors import UnknownTopicError
from gravitas.schemas.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its events and how many partitions it has."""

    name: str
    events: tuple[type[Event], ...]
    description: str
    partitions: int | None = None
    """Fixed partition count, or None for the node's configured default."""
    shared: bool = False
    """A federation topic: every node of the federation reads and writes the same one."""
    external: bool = False
    """Clients may publish here through a node's edge (requests, announcements); every
    other topic is written by agents only (see docs/security.md)."""


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "scenes.new", (ev.SceneAnnounced,), "scenes to index, reference or register", external=True
    ),
    TopicSpec("onboard.requests", (ev.OnboardRequested,), "lazy scenes a request needs now"),
    TopicSpec(
        "onboard.results",
        (ev.OnboardingDone, ev.OnboardingFailed, ev.RequestParked),
        "onboarding outcomes and the requests parked on them",
        partitions=1,  # one writer of the parked-request state
    ),
    TopicSpec("pixels.indexed", (ev.BlocksIndexed,), "blocks written to the pixel store"),
    TopicSpec("overviews.updated", (ev.OverviewsUpdated,), "overview pyramids recomputed"),
    TopicSpec("methane.requests", (ev.MethaneRequested,), "matched-filter jobs", external=True),
    TopicSpec(
        "methane.enhanced", (ev.MethaneEnhanced, ev.PlumeDetected), "enhancement layers, plumes"
    ),
    TopicSpec("requests.datacube", (ev.DatacubeRequested,), "datacube requests", external=True),
    TopicSpec("datacubes.ready", (ev.DatacubeReady,), "finished (or failed) datacubes"),
    TopicSpec(
        "requests.discovery",
        (ev.PixelSearch, ev.Featurize),
        "pixel searches, features",
        external=True,
    ),
    TopicSpec("discovery.results", (ev.SearchResult, ev.FeatureResult), "discovery answers"),
    TopicSpec(
        "stac.registrations",
        (ev.ItemRegistered, ev.ItemRetracted),
        "the federation's catalog",
        shared=True,
    ),
    TopicSpec("requests.training", (tr.TrainingRequested,), "federated trainings", external=True),
    TopicSpec(
        "training.invitations",
        (tr.TrainingInvitation,),
        "signed invitations to join a training",
        shared=True,
    ),
    TopicSpec("models.trained", (tr.ModelTrained,), "trained models (or failures)"),
    TopicSpec("progress", (ev.Progress,), "progress of long requests"),
    TopicSpec("openeo.jobs", (ev.OpenEOJobRequested,), "openEO batch jobs to run"),
    TopicSpec("openeo.job_updates", (ev.OpenEOJobUpdate,), "openEO batch job states"),
    TopicSpec("ops.ping", (ev.Ping,), "liveness probes", external=True),
    TopicSpec("ops.pong", (ev.Pong,), "liveness answers"),
    TopicSpec("deadletter", (ev.Rejected,), "rejected inputs with their reason", partitions=1),
    # modules and workflows (agents/modules, agents/workflows; docs/workflows.md)
    TopicSpec(
        "modules.registry",
        (wf.ModuleRecord,),
        "signed module versions of the federation",
        partitions=1,  # one writer of each node's module registry
        shared=True,
        external=True,  # records are signed by their owner node and verified
    ),
    TopicSpec(
        "modules.requests",
        (wf.StepRequested,),
        "python module steps to run",
        external=True,  # peers forward the steps placed on this node (signed, /rpc)
    ),
    TopicSpec(
        "workflows.requests",
        (wf.WorkflowRunRequested, wf.WorkflowCancelRequested),
        "workflow runs, retries and cancels",
        external=True,
    ),
    TopicSpec(
        "workflows.runs",
        (
            wf.WorkflowRunRequested,
            wf.WorkflowCancelRequested,
            wf.StepFinished,
            ev.SearchResult,
            ev.FeatureResult,
            tr.ModelTrained,
            ev.DatacubeReady,
            aa.MethaneResult,
            aa.SceneAccepted,
        ),
        "accepted runs and their steps' answers",
        partitions=1,  # one writer of the run state
    ),
    TopicSpec("workflows.status", (wf.WorkflowStatus,), "where each run stands"),
)


class Topology:
    """The declared topics, mapped to physical names.

    A node's own topics get ``prefix`` (several deployments on one cluster); federation
    topics get ``federation_prefix``, the same on every node of a federation.
    """

    def __init__(
        self,
        topics: Iterable[TopicSpec] = TOPICS,
        prefix: str = "",
        partitions: int = 4,
        federation_prefix: str = "",
    ) -> None:
        self._topics = {t.name: t for t in topics}
        self.prefix = prefix
        self.federation_prefix = federation_prefix
        self.default_partitions = partitions

    @property
    def names(self) -> list[str]:
        """Logical topic names, in declaration order."""
        return list(self._topics)

    def spec(self, topic: str) -> TopicSpec:
        """The spec of a logical topic, or :class:`UnknownTopicError` listing the known ones."""
        try:
            return self._topics[topic]
        except KeyError:
            known = ", ".join(self._topics)
            raise UnknownTopicError(f"unknown topic {topic!r}; known topics: {known}") from None

    def events(self, topic: str) -> Sequence[type[Event]]:
        """Event classes a topic carries."""
        return self.spec(topic).events

    def partitions(self, topic: str) -> int:
        """Partition count of a logical topic."""
        return self.spec(topic).partitions or self.default_partitions

    def physical(self, topic: str) -> str:
        """The broker-side name of a logical topic."""
        prefix = self.federation_prefix if self.spec(topic).shared else self.prefix
        return f"{prefix}{topic}"

    def topic_for(self, event: Event) -> str:
        """The single topic that carries this event's class."""
        matches = [t.name for t in self._topics.values() if type(event) in t.events]
        if len(matches) != 1:
            raise UnknownTopicError(
                f"{type(event).__name__} is carried by {matches or 'no topic'}; name the topic"
            )
        return matches[0]

    @classmethod
    def for_settings(cls, settings: Settings) -> Topology:
        """The topology a node with these settings declares."""
        return cls(
            prefix=settings.topic_prefix,
            partitions=settings.partitions,
            federation_prefix=settings.federation_prefix,
        )

    def partition_counts(self) -> dict[str, int]:
        """Physical topic name -> partition count, for creating topics up front."""
        return {self.physical(n): self.partitions(n) for n in self._topics}
