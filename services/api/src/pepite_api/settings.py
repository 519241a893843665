"""API settings: the one place the gateway reads its environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pepite_kit import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the API gateway and its worker (``PEPITE_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PEPITE_", extra="ignore")

    service_name: str = "api"
    http_port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("PEPITE_API_PORT", "PEPITE_HTTP_PORT"),
    )
    #: Processes serving requests on the one port. Each has its own event loop, so a
    #: machine's cores are all used; rate limits are shared through MongoDB.
    workers: int = Field(
        default=1, ge=1, le=64, validation_alias=AliasChoices("PEPITE_API_WORKERS")
    )
    #: Bodies above this are refused with 413 before they are read into memory.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Requests per minute a key may make unless the key sets its own limit.
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    #: How many seconds of the per-minute rate a key may spend at once.
    rate_limit_burst_seconds: float = Field(default=10.0, gt=0)
    #: How often the processes serving the API exchange what they admitted per key; a
    #: key may exceed its limit by what it gets admitted in about this long.
    rate_limit_sync_seconds: float = Field(default=0.25, gt=0)
    #: A verified key is trusted this long before it is looked up again (revocation delay).
    key_cache_seconds: float = Field(default=5.0, ge=0)
    #: An insights report is served from memory this long; after that it is still served
    #: while one background task recomputes it. 0 computes every request.
    insights_cache_seconds: float = Field(default=60.0, ge=0)
    #: Encrypts webhook secrets at rest (any string, at least 32 characters). Webhook
    #: subscriptions cannot be created without it.
    secrets_key: SecretStr | None = Field(default=None, min_length=32)
    #: Hosts or networks (``hooks.internal``, ``10.0.0.0/8``, ``127.0.0.1``) webhooks may
    #: target even though they are private, loopback or link-local addresses.
    webhook_allowed_targets: list[str] = Field(default_factory=list)
    #: A delivery is retried with exponential backoff until this many hours have passed.
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    #: First retry delay; each next one doubles, capped at ``webhook_retry_max_seconds``.
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    #: A subscription is disabled after this many failed attempts in a row.
    webhook_disable_after_failures: int = Field(default=50, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Each retry delay is shortened by a random fraction up to this, so the retries of
    #: deliveries that failed together (a receiver's outage) do not all come back at once.
    webhook_retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    #: After a secret rotation the previous secret keeps signing deliveries (a second
    #: ``v1=`` in ``Pepite-Signature``) this long, so receivers can switch without a gap.
    webhook_secret_grace_hours: float = Field(default=24.0, ge=0)
    #: Deliveries one webhook worker attempts at once.
    webhook_concurrency: int = Field(default=16, ge=1)
    #: Longest wait of the webhook worker between two looks for deliveries due (retries,
    #: and redeliveries asked through the API, which another process writes).
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    #: Consumer group of the webhook worker on the notifications topic.
    webhook_consumer_group: str = "api-webhooks"
    #: Port of the webhook worker's /healthz and /metrics (``python -m pepite_api.worker``),
    #: apart from the API's so both run on one host.
    api_worker_port: int = Field(default=8105, ge=0, le=65535)
    #: How often the webhook worker refreshes the community and dead-letter gauges it
    #: exports on /metrics (see docs/observability.md).
    community_gauges_seconds: float = Field(default=30.0, gt=0)
    #: Communities those gauges cover at most, the most active first: each is a label
    #: value, so this bounds the series Prometheus stores.
    community_gauges_max_communities: int = Field(default=200, ge=1)
    #: Messages scoring at least this on a moderation score join the moderation queue.
    moderation_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    #: /ask answers from the knowledge base when its confidence (an estimated chance of
    #: being right, calibrated by bench/faq_eval.py) reaches this; below, a human is asked.
    knowledge_confidence_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Load the FAQ's embedding model at start-up (in the background) rather than on
    #: the first question; off saves memory in a process that never answers questions.
    knowledge_warm_up: bool = True
