"""``python -m services.keygen``: run the keygen service until SIGINT/SIGTERM."""
from __future__ import annotations

from shared.service import run

from services.keygen.app import create_app
from services.keygen.config import Config


def main() -> None:
    config = Config.from_env()
    run("keygen", config.common, lambda: create_app(config), config.port)


if __name__ == "__main__":
    main()
