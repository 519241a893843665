"""Start the ingestor service: ``python -m pepite_ingestor``.

The service process hosts the live platform adapters; history exports are read by
the ``pepite import`` command, which publishes through the same contracts.
"""

from __future__ import annotations

from pepite_ingestor.settings import Settings
from pepite_kit import WorkerSpec, run_worker


def main() -> None:
    settings = Settings()
    run_worker(WorkerSpec(name=settings.service_name), settings)


if __name__ == "__main__":
    main()
