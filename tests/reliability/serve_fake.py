"""A real ``chatbot`` server process on fake models for crash tests: ``python -m
tests.reliability.serve_fake DATA_DIR PORT [SLOW_TOKEN_S]``. Ingests a tiny public corpus when the
store is empty, then serves on 127.0.0.1 until killed."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    import uvicorn

    from chatbot.container import Container
    from chatbot.web.app import create_app
    from tests.security import fakes
    from tests.security.live import make_settings
    from tests.web.conftest import make_ingester, write_corpus

    data, port = Path(sys.argv[1]), int(sys.argv[2])
    slow = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    container = Container(make_settings(data))
    fakes.install(container, slow_tokens_s=slow)
    ingester = make_ingester(container)
    if container.store.stats()["documents"] == 0:
        ingester([write_corpus(data.parent / "corpus")], user=None)
    uvicorn.run(
        create_app(container, ingester=ingester, ui=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
