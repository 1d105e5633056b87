#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the store tests and print the line that points them at it:
#   eval "$(.ci/postgres.sh)" && .venv/bin/pytest tests/test_store.py
# The cluster lives in a temp dir (PGDATA_DIR to choose), listens on 127.0.0.1:${PGPORT:-55432}
# only, trusts local connections, and runs as the `postgres` user when started by root.
# Stop it with: pg_ctl -D "$PGDATA_DIR" stop  (the path is printed on stderr).
set -euo pipefail

PORT="${PGPORT:-55432}"
DB=lstm_demo_test
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$BIN" ]]; then
    BIN="$(dirname "$(command -v pg_ctl || command -v initdb || echo /nonexistent/x)")"
fi
if [[ ! -x "$BIN/initdb" ]]; then
    echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
fi

as_pg() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    PGDATA_DIR="${PGDATA_DIR:-$(mktemp -d /tmp/lstm-demo-pg.XXXXXX)}"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PGDATA_DIR"; fi
    as_pg "$BIN/initdb" -D "$PGDATA_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR/data" -l "$PGDATA_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGDATA_DIR -c fsync=off" start >/dev/null
    echo "postgres.sh: server in $PGDATA_DIR/data on 127.0.0.1:$PORT (log: $PGDATA_DIR/server.log)" >&2
fi

PSQL=("$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
if [[ -z "$(as_pg "${PSQL[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]]; then
    as_pg "${PSQL[@]}" -c "CREATE DATABASE $DB"
fi
echo "export LSTM_DEMO_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
