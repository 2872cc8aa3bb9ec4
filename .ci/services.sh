#!/usr/bin/env bash
# Run a command next to a real PostgreSQL and a real Milvus standalone, in a private network
# namespace that has only loopback (Milvus binds 0.0.0.0 on about nine ports).
#
#   .ci/services.sh install          # install what is missing (Debian postgresql, .venv-milvus)
#   .ci/services.sh run -- CMD ...   # start both servers, run CMD inside the namespace, stop both
#
# Inside CMD: MILVUS_URI, TEST_POSTGRES_URL (a database that tests may wipe),
# TEST_POSTGRES_ADMIN_URL (the maintenance database, for CREATE DATABASE) and LLAMACPP_PYTHON
# (an interpreter with xllamacpp, for tests that start a llama.cpp server) are exported.
# Servers are stopped whatever CMD does: Milvus by process group (TERM, then KILL after 20 s,
# because killing the milvus-server wrapper alone leaves the `milvus run standalone` child),
# PostgreSQL with `pg_ctl stop -m fast`. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MILVUS_VENV=${MILVUS_VENV:-$ROOT/.venv-milvus}
MILVUS_VERSION=2.3.5
LLAMACPP_VENV=${LLAMACPP_VENV:-$ROOT/.venv-llamacpp}
XLLAMACPP_VERSION=2026.10.11549
PG_PORT=${PG_PORT:-5432}
log() { echo "[services] $*" >&2; }

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install() {
  if ! pg_bindir >/dev/null; then
    log "installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if [ ! -x "$MILVUS_VENV/bin/milvus-server" ]; then
    log "installing milvus==$MILVUS_VERSION into $MILVUS_VENV"
    python3 -m venv "$MILVUS_VENV"
    "$MILVUS_VENV/bin/pip" install --disable-pip-version-check -q "milvus==$MILVUS_VERSION"
  fi
  if [ ! -x "$LLAMACPP_VENV/bin/python" ]; then
    log "installing xllamacpp==$XLLAMACPP_VERSION into $LLAMACPP_VENV (llama.cpp server for tests)"
    python3 -m venv "$LLAMACPP_VENV"
    "$LLAMACPP_VENV/bin/pip" install --disable-pip-version-check -q "xllamacpp==$XLLAMACPP_VERSION"
  fi
  command -v unshare >/dev/null && command -v ip >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux iproute2 >/dev/null
  }
}

as_pg() {  # run a PostgreSQL binary as the postgres user when we are root (postgres refuses root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

MILVUS_PGID=""
PGDATA=""
WORK=""

stop_all() {
  set +e
  if [ -n "$MILVUS_PGID" ] && kill -0 -- "-$MILVUS_PGID" 2>/dev/null; then
    log "stopping milvus (process group $MILVUS_PGID)"
    kill -TERM -- "-$MILVUS_PGID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 -- "-$MILVUS_PGID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$MILVUS_PGID" 2>/dev/null
  fi
  if [ -n "$PGDATA" ] && [ -f "$PGDATA/postmaster.pid" ]; then
    log "stopping postgresql"
    as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -t 30 stop >/dev/null 2>&1 \
      || kill -KILL "$(head -1 "$PGDATA/postmaster.pid")" 2>/dev/null
  fi
  if [ -n "$WORK" ] && [ -z "${KEEP_SERVICES_DIR:-}" ]; then rm -rf "$WORK"; fi
}

start_postgres() {
  local bindir; bindir=$(pg_bindir)
  PGDATA="$WORK/pg"
  mkdir -p "$PGDATA" "$WORK/pgsock" "$WORK/pglog"
  chmod 755 "$WORK"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PGDATA" "$WORK/pgsock" "$WORK/pglog"; fi
  as_pg "$bindir/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1
  as_pg "$bindir/pg_ctl" -D "$PGDATA" -w -t 60 -l "$WORK/pglog/postgres.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $WORK/pgsock -c fsync=off -c max_connections=200" \
    start >/dev/null
  for db in chatbot_test chatbot; do
    as_pg "$bindir/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE DATABASE $db" >/dev/null
  done
  export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/chatbot_test"
  export TEST_POSTGRES_ADMIN_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  log "postgresql up on 127.0.0.1:$PG_PORT"
}

start_milvus() {
  mkdir -p "$WORK/milvus"
  setsid "$MILVUS_VENV/bin/milvus-server" --data "$WORK/milvus" >"$WORK/milvus.log" 2>&1 &
  MILVUS_PGID=$!
  local started=$SECONDS
  until curl -sf -o /dev/null http://127.0.0.1:9091/healthz; do
    if ! kill -0 "$MILVUS_PGID" 2>/dev/null || (( SECONDS - started > 180 )); then
      log "milvus did not become healthy; last log lines:"; tail -20 "$WORK/milvus.log" >&2
      return 1
    fi
    sleep 0.5
  done
  export MILVUS_URI="http://127.0.0.1:19530"
  export LLAMACPP_PYTHON="$LLAMACPP_VENV/bin/python"
  log "milvus $MILVUS_VERSION up on 127.0.0.1:19530 after $(( SECONDS - started )) s"
}

inside() {  # we are in the private namespace now
  ip link set lo up
  WORK=$(mktemp -d /tmp/chatbot-services.XXXXXX)
  trap stop_all EXIT
  trap 'exit 143' TERM INT
  start_postgres
  start_milvus
  set +e
  "$@"
  local rc=$?
  set -e
  exit $rc
}

case "${1:-}" in
  install) install ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run -- CMD ..." >&2; exit 2; }
    if [ "${CHATBOT_SERVICES_NETNS:-}" = 1 ]; then
      inside "$@"
    else
      install
      exec env CHATBOT_SERVICES_NETNS=1 unshare -n -- bash "$0" run -- "$@"
    fi
    ;;
  *) echo "usage: $0 install | run -- CMD ..." >&2; exit 2 ;;
esac
