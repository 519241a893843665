"""Pépite kit: the plumbing every service shares, written once."""

from pepite_kit.consumer import ConsumerLoop, LoopState, event_loop_for
from pepite_kit.mongo import Database, IndexSpec, mongo_database
from pepite_kit.producer import EventPublisher, ensure_topics
from pepite_kit.runner import Runtime, WorkerSpec, run_worker
from pepite_kit.settings import KafkaSettings, MongoSettings, ServiceSettings

__all__ = [
    "ConsumerLoop",
    "Database",
    "EventPublisher",
    "IndexSpec",
    "KafkaSettings",
    "LoopState",
    "MongoSettings",
    "Runtime",
    "ServiceSettings",
    "WorkerSpec",
    "ensure_topics",
    "event_loop_for",
    "mongo_database",
    "run_worker",
]
