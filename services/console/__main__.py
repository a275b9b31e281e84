"""``python -m services.console``: run the console until SIGINT/SIGTERM."""
from __future__ import annotations

from shared.service import run

from services.console.app import create_app
from services.console.config import Config


def main() -> None:
    config = Config.from_env()
    run("console", config.common, lambda: create_app(config), config.port)


if __name__ == "__main__":
    main()
