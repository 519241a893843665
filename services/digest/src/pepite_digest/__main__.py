"""Start the digest service: ``python -m pepite_digest``.

It starts, creates the topics it will consume, and serves /healthz and /metrics;
its consumers are added with the features they serve.
"""

from __future__ import annotations

from pepite_digest.settings import Settings
from pepite_kit import WorkerSpec, run_worker


def main() -> None:
    settings = Settings()
    run_worker(WorkerSpec(name=settings.service_name), settings)


if __name__ == "__main__":
    main()
