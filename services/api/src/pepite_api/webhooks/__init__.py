"""Webhooks: subscriptions made through the API, deliveries made by the webhook worker.

``routes`` is the HTTP side; ``handlers`` (fan-out of each notification) and
``dispatcher`` (attempts and retries) run in ``python -m pepite_api.worker``. Both
sides meet in the two collections of ``repository``. See docs/webhooks.md.
"""
