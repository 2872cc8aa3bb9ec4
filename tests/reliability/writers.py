"""One writer process of the SQLite contention test (F4): read-then-write transactions through
the Repository, the way the app does them."""

from __future__ import annotations

import sys


def main() -> None:
    from chatbot.db.engine import make_engine
    from chatbot.db.repos import Repository

    url, site_id, user_id, conversation_id, message_id, worker, rounds = sys.argv[1:8]
    repo = Repository(make_engine(url))
    locked = other = 0
    for i in range(int(rounds)):
        for step in (
            lambda: repo.consume_widget_quota(site_id=site_id, limits=[("d:test", 10**9)]),
            lambda i=i: repo.add_message(
                user_id=user_id,
                conversation_id=conversation_id,
                role="user",
                content=f"w{worker}-{i}",
            ),
            lambda i=i: repo.rate_message(
                user_id=user_id,
                message_id=message_id,
                rating="up" if i % 2 else "down",
                comment=f"{worker}",
            ),
            lambda i=i: repo.set_personalisation(user_id=user_id, enabled=bool(i % 2)),
        ):
            try:
                step()
            except Exception as exc:
                if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                    locked += 1
                else:
                    other += 1
                    print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"{locked} {other}", flush=True)


if __name__ == "__main__":
    main()
