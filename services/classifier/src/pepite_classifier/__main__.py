"""Start the classifier: ``python -m pepite_classifier``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pepite_classifier.handlers import RawMessageHandler
from pepite_classifier.repository import INDEXES, ClassifierRepository
from pepite_classifier.settings import Settings
from pepite_contracts import Topic
from pepite_kit import ConsumerLoop, Runtime, WorkerSpec, event_loop_for, run_worker


def build_loops(runtime: Runtime, settings: Settings) -> Sequence[ConsumerLoop[Any]]:
    handler = RawMessageHandler(ClassifierRepository(runtime.db))
    return [
        event_loop_for(
            name="raw-messages",
            settings=settings,
            group_id=settings.consumer_group,
            handlers={
                settings.topic_name(Topic.MESSAGES_RAW): handler,
                settings.topic_name(Topic.MEMBERS_EVENTS): handler,
            },
            publisher=runtime.publisher,
        )
    ]


def main() -> None:
    settings = Settings()
    spec = WorkerSpec(
        name=settings.service_name,
        indexes=INDEXES,
        build_loops=partial(build_loops, settings=settings),
    )
    run_worker(spec, settings)


if __name__ == "__main__":
    main()
