#!/usr/bin/env bash
# The scale-out suites; run by `make test-scaleout` inside `.ci/services.sh run -- ...`, which
# has started PostgreSQL and Milvus and exported MILVUS_URI, TEST_POSTGRES_URL, LLAMACPP_PYTHON.
#  1. tests/scaleout (backend matrix, migrations, llama.cpp server, two app servers, migrate)
#     and the repository suite on PostgreSQL;
#  2. the service and personalisation suites unchanged, with every test's settings pointed at
#     a fresh PostgreSQL database and Milvus collection (TEST_DEPLOYMENT=scaleout).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
: "${MILVUS_URI:?run me through .ci/services.sh run -- $0}"
started=$SECONDS
"$PYTEST" -q tests/scaleout tests/test_repos.py "$@"
first=$?
TEST_DEPLOYMENT=scaleout "$PYTEST" -q tests/test_service.py tests/test_personalisation.py "$@"
second=$?
echo "[scaleout] suites finished in $(( SECONDS - started )) s (rc $first, $second)" >&2
[ "$first" = 0 ] && [ "$second" = 0 ]
