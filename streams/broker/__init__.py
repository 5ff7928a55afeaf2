"""A real Apache Kafka broker (KRaft, from Maven Central jars) for tests and ``gravitas broker``.

with KafkaBroker() as broker:
    create_topics_sync(broker.bootstrap, {"scenes.new": 4})
"""

from gravitas.streams.broker.admin import create_topics, create_topics_sync
from gravitas.streams.broker.jars import KAFKA_VERSION, ensure_kafka_jars
from gravitas.streams.broker.server import KafkaBroker

__all__ = [
    "KAFKA_VERSION",
    "KafkaBroker",
    "create_topics",
    "create_topics_sync",
    "ensure_kafka_jars",
]
