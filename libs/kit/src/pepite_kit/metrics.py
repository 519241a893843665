"""Every Prometheus metric Pépite exports, defined once.

Labels take only bounded values (topic, consumer group, route template, status class,
enums of the contracts, and community ids capped in number): never a member id, message
id or free text. tests/services/api/test_metrics_cardinality.py holds them to it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONSUMER_RECORDS_CONSUMED = Counter(
    "pepite_consumer_records_consumed_total",
    "Records fetched from a topic by a consumer group.",
    ["topic", "group"],
)
CONSUMER_RECORDS_PROCESSED = Counter(
    "pepite_consumer_records_processed_total",
    "Records whose handler succeeded and whose offset was committed.",
    ["topic", "group"],
)
CONSUMER_RECORDS_FAILED = Counter(
    "pepite_consumer_records_failed_total",
    "Records that could not be processed (stage: decode or handler).",
    ["topic", "group", "stage"],
)
CONSUMER_RECORDS_DEAD_LETTERED = Counter(
    "pepite_consumer_records_dead_lettered_total",
    "Records sent to the topic's dead-letter twin.",
    ["topic", "group"],
)
CONSUMER_RETRIES = Counter(
    "pepite_consumer_retries_total",
    "Handler retries (kind: transient when the infrastructure failed, error otherwise).",
    ["topic", "group", "kind"],
)
CONSUMER_HANDLER_SECONDS = Histogram(
    "pepite_consumer_handler_seconds",
    "Time the handler took for one batch of records.",
    ["topic", "group"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_BATCH_SIZE = Histogram(
    "pepite_consumer_batch_records",
    "Records per handled batch.",
    ["topic", "group"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
CONSUMER_LAG = Gauge(
    "pepite_consumer_lag_records",
    "Records on the broker not yet processed by the group, summed over assigned partitions.",
    ["topic", "group"],
)
PRODUCER_RECORDS = Counter(
    "pepite_producer_records_total",
    "Records acknowledged by the broker.",
    ["topic"],
)
PRODUCER_ERRORS = Counter(
    "pepite_producer_errors_total",
    "Records the broker did not acknowledge.",
    ["topic"],
)
HTTP_REQUESTS = Counter(
    "pepite_http_requests_total",
    "HTTP requests served, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "pepite_http_request_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=_LATENCY_BUCKETS,
)
IMPORT_RECORDS = Counter(
    "pepite_import_records_total",
    "Records read from exports and published, by format and event type.",
    ["format", "type"],
)
MESSAGES_ANALYZED = Counter(
    "pepite_messages_analyzed_total",
    "Messages whose analysis was stored, by the analyzer that made it.",
    ["analyzer"],
)
ANALYZER_BATCH_SECONDS = Histogram(
    "pepite_analyzer_batch_seconds",
    "Time to analyze one batch of messages, by analyzer.",
    ["analyzer"],
    buckets=_LATENCY_BUCKETS,
)
MESSAGES_EMBEDDED = Counter(
    "pepite_messages_embedded_total",
    "Messages turned into sentence embeddings (the costly step of local analysis).",
)
LLM_TOKENS = Counter(
    "pepite_llm_tokens_total",
    "Tokens billed by the LLM, by model and kind (prompt or completion).",
    ["model", "kind"],
)
LLM_COST_USD = Counter(
    "pepite_llm_cost_usd_total",
    "Estimated LLM cost in US dollars, by model.",
    ["model"],
)
LLM_CACHE_HITS = Counter(
    "pepite_llm_cache_hits_total",
    "Messages answered from the analysis cache instead of a paid call.",
)
LLM_FALLBACKS = Counter(
    "pepite_llm_fallbacks_total",
    "Messages analyzed locally instead of by the LLM, by reason.",
    ["reason"],
)
WEBHOOK_ATTEMPTS = Counter(
    "pepite_webhook_attempts_total",
    "Webhook delivery attempts, by event type and outcome (success or failure).",
    ["event_type", "outcome"],
)
WEBHOOK_DELIVERIES_SUCCEEDED = Counter(
    "pepite_webhook_deliveries_succeeded_total",
    "Webhook deliveries a receiver accepted (answered 2xx), by event type.",
    ["event_type"],
)
WEBHOOK_DELIVERIES_FAILED = Counter(
    "pepite_webhook_deliveries_failed_total",
    "Webhook deliveries given up after their retries (or their one redelivery), by event type.",
    ["event_type"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "pepite_webhook_attempt_seconds",
    "Time one webhook delivery attempt took, address check included, by event type.",
    ["event_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOK_SUBSCRIPTIONS_DISABLED = Counter(
    "pepite_webhook_subscriptions_disabled_total",
    "Webhook subscriptions disabled automatically after failed attempts in a row.",
)
ALERTS_RAISED = Counter(
    "pepite_alerts_raised_total",
    "Alerts raised (spikes, crisis signals, moderation strikes), by kind and severity.",
    ["kind", "severity"],
)
LEADERBOARD_NOTICES = Counter(
    "pepite_leaderboard_notices_total",
    "leaderboard.updated notices published (a ranking's top changed), by theme.",
    ["theme"],
)
WEBHOOK_RETRIES = Counter(
    "pepite_webhook_retries_total",
    "Webhook delivery attempts after a delivery's first (retries and redeliveries), by event type.",
    ["event_type"],
)

# The gauges below are set by one process only, the API's worker, which reads them from
# MongoDB and the broker on a timer (pepite_api.community_gauges_refresher). Communities
# exported are capped (PEPITE_COMMUNITY_GAUGES_MAX_COMMUNITIES, most active first) and a
# community that drops out of the cap loses its series.
DEAD_LETTER_RECORDS = Gauge(
    "pepite_dead_letter_records",
    "Records waiting on a dead-letter topic (end minus start offset, summed over partitions);"
    " topic is the dead-letter topic's name without the deployment's prefix.",
    ["topic"],
)
COMMUNITY_MESSAGES_24H = Gauge(
    "pepite_community_messages_24h",
    "Messages stored for the community whose message time is within the last 24 hours.",
    ["community"],
)
COMMUNITY_LAST_INGESTED = Gauge(
    "pepite_community_last_ingested_timestamp_seconds",
    "Unix time at which the community's most recently stored message was stored.",
    ["community"],
)
COMMUNITY_INSIGHTS_7D = Gauge(
    "pepite_community_insights_7d",
    "Insight messages of each kind over the last 7 UTC days (today included), from the daily"
    " rollups.",
    ["community", "kind"],
)
COMMUNITY_SENTIMENT_7D = Gauge(
    "pepite_community_sentiment_7d",
    "Analyzed messages of each sentiment over the last 7 UTC days (today included), from the"
    " daily rollups.",
    ["community", "sentiment"],
)
COMMUNITY_OPEN_ALERTS = Gauge(
    "pepite_community_open_alerts",
    "Alerts raised and neither acknowledged nor resolved, by kind.",
    ["community", "kind"],
)
COMMUNITY_GAUGES_REFRESHED = Gauge(
    "pepite_community_gauges_refreshed_timestamp_seconds",
    "Unix time of the last successful refresh of the community gauges.",
)
GAUGES_REFRESH_ERRORS = Counter(
    "pepite_gauges_refresh_errors_total",
    "Failed refreshes of the worker's gauges (part: communities or dead_letters); the"
    " gauges keep their previous values.",
    ["part"],
)
GAUGES_REFRESH_SECONDS = Histogram(
    "pepite_gauges_refresh_seconds",
    "Time one refresh of the worker's gauges took (part: communities or dead_letters).",
    ["part"],
    buckets=_LATENCY_BUCKETS,
)
