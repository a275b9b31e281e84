"""``python -m services.certs``: run the certs service until SIGINT/SIGTERM."""
from __future__ import annotations

from shared.service import run

from .app import create_app
from .config import Config


def main() -> None:
    """Read the environment and serve until stopped."""
    config = Config.from_env()
    run("certs", config.common, lambda: create_app(config), config.port)


if __name__ == "__main__":
    main()
