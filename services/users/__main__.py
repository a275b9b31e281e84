"""``python -m services.users``: run the users service until SIGINT/SIGTERM."""
from __future__ import annotations

from shared.service import run

from services.users.app import create_app
from services.users.config import Config


def main() -> None:
    config = Config.from_env()
    run("users", config.common, lambda: create_app(config), config.port)


if __name__ == "__main__":
    main()
