"""Webhook retries are countable: an attempt after a delivery's first counts as one."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from tests.services.api.conftest import Api
from tests.services.api.test_webhooks import (
    Receiver,
    Workers,
    admin,
    api_settings,
    digest_event,
    notify,
    only_delivery,
    receiver,
    subscribe,
    workers,
)

__all__ = ["admin", "api_settings", "receiver", "workers"]

EVENT_TYPE = "digest.published"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_retries_are_counted_apart_from_first_attempts(
    api: Api, admin: httpx.AsyncClient, receiver: Receiver, workers: Workers
) -> None:
    retries = value("pepite_webhook_retries_total", event_type=EVENT_TYPE)
    failures = value("pepite_webhook_attempts_total", event_type=EVENT_TYPE, outcome="failure")
    successes = value("pepite_webhook_attempts_total", event_type=EVENT_TYPE, outcome="success")
    receiver.statuses = [500, 503]
    webhook_id = (await subscribe(admin, receiver.url()))["webhook_id"]
    await workers.start(consume=False)
    await notify(api, digest_event())

    await receiver.wait_for(3)
    await only_delivery(admin, webhook_id, "delivered")

    # Three attempts of one delivery: the first, then two retries.
    assert value("pepite_webhook_retries_total", event_type=EVENT_TYPE) == retries + 2
    assert (
        value("pepite_webhook_attempts_total", event_type=EVENT_TYPE, outcome="failure")
        == failures + 2
    )
    assert (
        value("pepite_webhook_attempts_total", event_type=EVENT_TYPE, outcome="success")
        == successes + 1
    )
