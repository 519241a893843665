"""Start the API gateway: ``python -m pepite_api``."""

from __future__ import annotations

from pepite_api.server import main

if __name__ == "__main__":
    main()
