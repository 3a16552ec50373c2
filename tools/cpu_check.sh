#!/usr/bin/env bash
# The CPU check of the dreamsim element's fast CPU path: on an x86-64
# machine with bf16 matrix units (AMX / AVX512-BF16) that has neither
# GStreamer nor Rust, runs the element end to end through GStreamer with the
# full DreamSim ensemble on 2 cores (taskset -c 0,1): fp32 on ONNX Runtime's
# CPU provider, then the automatic choice (OpenVINO in bf16 there) with the
# agreement of its distances with fp32. Every step has a hard timeout, the
# whole run stays under 200 s; a summary comes last.
#
# Usage (from the repository root):
#   tools/cpu_check.sh --bundle [DIR]
#       On the build machine (Debian 12, Rust, GStreamer 1.22): builds the
#       gst-dreamsim tool (the element is registered statically in it; its
#       `bench` subcommand runs the checks), and packs
#       into DIR (default .cache/cpu-bundle) one cpu-bundle.tar.xz with the
#       stripped binary, the GStreamer libraries and the few plugins that
#       `filesrc ! decodebin ! videoconvert ! dreamsim ! fakesink` needs for
#       an MJPEG/AVI clip (transcoded here from .cache/media/bikes.mp4), every
#       shared library they need except glibc's own, the onnxruntime-openvino
#       1.24.1 build (from .cache/onnxruntime-openvino), and the skeleton of
#       the ensemble model (tools/model_skeleton.py), plus a manifest.
#   tools/cpu_check.sh [--bundle-dir DIR] [--work DIR] [--frames N]
#                      [--model M.onnx] [--budget S]
#       On the test machine: unpacks the bundle into --work (default
#       .cache/cpu-check-run, outside DIR so that it is never carried) with
#       python3's tarfile, inflates the model (python3 with numpy and onnx;
#       once), and runs the checks. --model runs another model instead of
#       the inflated ensemble (local tests). Logs go to $OUT (if set) or
#       /tmp/dreamsim-cpu-check.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

BUNDLE_DIR=.cache/cpu-bundle
WORK=
MODE=check
FRAMES=64
MODEL=
BUDGET=${CPU_CHECK_BUDGET:-200}
ORT_DIR=${ORT_OPENVINO_DIR:-.cache/onnxruntime-openvino}
# The ensemble to strip into the bundle: the one tools/get_model.sh installs,
# unless CPU_CHECK_SOURCE_MODEL names another (a random-weight export, say).
SOURCE_MODEL=${CPU_CHECK_SOURCE_MODEL:-${GST_DREAMSIM_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/models}/ensemble.onnx}
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) MODE=bundle; if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then BUNDLE_DIR=$2; shift; fi; shift ;;
        --bundle-dir) BUNDLE_DIR=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --frames) FRAMES=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --budget) BUDGET=$2; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "cpu_check: unknown option $1" >&2; exit 2 ;;
    esac
done
WORK=${WORK:-.cache/cpu-check-run}

LOG=${OUT:-/tmp/dreamsim-cpu-check}
mkdir -p "$LOG"

STEP_WIDTH=22
# shellcheck source=tools/check_steps.sh
. "$ROOT/tools/check_steps.sh"
# glibc's own libraries: never bundled, always the test machine's.
is_glibc() {
    case "$(basename "$1")" in
        linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|libutil.so*|libmvec.so*) return 0 ;;
    esac
    return 1
}

GST_PLUGINS="coreelements typefindfunctions playback videoconvertscale avi jpeg videotestsrc"
ORT_VERSION=1.24.1

# ------------------------------------------------------------------ --bundle

if [ "$MODE" = bundle ]; then
    for tool in cargo gst-launch-1.0 python3 xz strip; do
        command -v $tool >/dev/null || { echo "cpu_check --bundle: $tool not found" >&2; exit 1; }
    done
    [ -e "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ] && [ -e "$ORT_DIR/libonnxruntime_providers_openvino.so" ] || {
        echo "cpu_check --bundle: no onnxruntime-openvino in $ORT_DIR: run tools/get_onnxruntime.sh --build openvino --dest $ORT_DIR" >&2; exit 1; }
    [ -e "$SOURCE_MODEL" ] || { echo "cpu_check --bundle: no model at $SOURCE_MODEL (CPU_CHECK_SOURCE_MODEL)" >&2; exit 1; }
    [ -e .cache/media/bikes.mp4 ] || tools/fetch_test_media.sh || { echo "cpu_check --bundle: no .cache/media/bikes.mp4" >&2; exit 1; }

    say "building the gst-dreamsim tool (release)"
    cargo build --release -p gst-dreamsim --bin gst-dreamsim --message-format=json-render-diagnostics \
        >"$LOG/build.json" 2>"$LOG/build.log" || { tail -n 30 "$LOG/build.log"; echo "cpu_check --bundle: the build failed" >&2; exit 1; }
    BENCH_BIN=$(python3 - "$LOG/build.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "gst-dreamsim" \
            and m.get("executable"):
        print(m["executable"])
EOF
)
    [ -x "$BENCH_BIN" ] || { echo "cpu_check --bundle: no gst-dreamsim executable in the build output" >&2; exit 1; }

    STAGE=$(mktemp -d)
    trap 'rm -rf "$STAGE"' EXIT
    mkdir -p "$STAGE"/{bin,lib,gst-plugins,onnxruntime,media,model}
    cp "$BENCH_BIN" "$STAGE/bin/gst-dreamsim"
    strip "$STAGE/bin/gst-dreamsim"
    "$STAGE/bin/gst-dreamsim" bench --help >"$STAGE/bin/bench.usage" 2>&1

    # GStreamer: the plugins, the scanner, and every library they need.
    GST_SYS=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/gstreamer-1.0)
    SCANNER=$(pkg-config --variable=pluginscannerdir gstreamer-1.0 2>/dev/null)/gst-plugin-scanner
    [ -x "$SCANNER" ] || SCANNER=/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
    for p in $GST_PLUGINS; do
        cp "$GST_SYS/libgst$p.so" "$STAGE/gst-plugins/" || { echo "cpu_check --bundle: no plugin $p in $GST_SYS" >&2; exit 1; }
    done
    cp "$SCANNER" "$STAGE/bin/gst-plugin-scanner"
    # The ONNX Runtime build, stripped of its symbol tables.
    ort_real=$(cd "$ORT_DIR" && pwd)
    for f in "$ORT_DIR"/*.so*; do
        [ -L "$f" ] && continue
        cp "$f" "$STAGE/onnxruntime/"
    done
    strip --strip-unneeded "$STAGE"/onnxruntime/libonnxruntime*.so* 2>/dev/null
    ln -s "libonnxruntime.so.$ORT_VERSION" "$STAGE/onnxruntime/libonnxruntime.so"
    ln -s "libonnxruntime.so.$ORT_VERSION" "$STAGE/onnxruntime/libonnxruntime.so.1"
    cp "$ORT_DIR/.package" "$STAGE/onnxruntime/package" 2>/dev/null
    # Shared libraries: whatever ldd lists for all of these, except glibc
    # and what the ONNX Runtime folder already has.
    for obj in "$BENCH_BIN" "$SCANNER" "$STAGE"/gst-plugins/*.so "$ort_real"/*.so*; do
        ldd "$obj" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
    done | sort -u | while read -r name path; do
        is_glibc "$name" && continue
        case "$(readlink -f "$path")" in "$ort_real"/*) continue ;; esac
        [ -e "$STAGE/lib/$name" ] || cp -L "$path" "$STAGE/lib/$name"
    done
    if ldd "$BENCH_BIN" "$STAGE"/gst-plugins/*.so | grep -q 'not found'; then
        echo "cpu_check --bundle: a library is missing here:" >&2
        ldd "$BENCH_BIN" "$STAGE"/gst-plugins/*.so | grep 'not found' >&2
        exit 1
    fi

    # The clip: bikes.mp4 (H.264) as MJPEG in AVI, decoded there by jpegdec
    # (libjpeg) instead of avdec_h264 (libav and its long chain of libraries).
    say "transcoding the clip to MJPEG/AVI"
    timeout 300 gst-launch-1.0 -q filesrc location=.cache/media/bikes.mp4 ! decodebin ! videoconvert \
        ! video/x-raw,format=I420 ! jpegenc quality=90 ! avimux ! filesink location="$STAGE/media/bikes.avi" \
        || { echo "cpu_check --bundle: transcoding failed" >&2; exit 1; }

    say "stripping the model ($SOURCE_MODEL) and inflating it once for its sha256"
    python3 tools/model_skeleton.py strip "$SOURCE_MODEL" "$STAGE/model/ensemble.skel.onnx" || exit 1
    cp tools/model_skeleton.py "$STAGE/model/"
    python3 tools/model_skeleton.py inflate "$STAGE/model/ensemble.skel.onnx" "$STAGE/ensemble.onnx" | tee "$LOG/inflate.log" || exit 1
    MODEL_SHA=$(awk '/^sha256 / { print $2 }' "$LOG/inflate.log")
    MODEL_BYTES=$(stat -c %s "$STAGE/ensemble.onnx")
    if python3 -c 'import onnxruntime' 2>/dev/null; then
        python3 tools/model_skeleton.py check "$STAGE/ensemble.onnx" | tee "$LOG/model-check.log"
    elif [ -x tools/.venv/bin/python ]; then
        tools/.venv/bin/python tools/model_skeleton.py check "$STAGE/ensemble.onnx" | tee "$LOG/model-check.log"
    fi
    rm -f "$STAGE/ensemble.onnx"

    size_of() { du -sb "$@" | awk '{ s += $1 } END { printf "%.1f MiB", s / 1048576 }'; }
    {
        echo "commit $(git rev-parse --short=12 HEAD 2>/dev/null)$(git diff --quiet HEAD -- src plugin cli 2>/dev/null || echo -dirty)"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), glibc $(ldd --version 2>/dev/null | head -n1 | awk '{print $NF}'), $(gst-launch-1.0 --version | sed -n 's/^GStreamer /GStreamer /p')"
        echo "onnxruntime $(cat "$ORT_DIR/.package" 2>/dev/null)"
        echo "model_sha256 $MODEL_SHA"
        echo "model_bytes $MODEL_BYTES"
        echo "model_source $(basename "$SOURCE_MODEL") $(sha256sum "$SOURCE_MODEL" | cut -d' ' -f1)"
        echo "bench_flags $(grep -oE -- '--[a-z-]+' "$STAGE/bin/bench.usage" | sort -u | tr '\n' ' ')"
        echo "plugins $GST_PLUGINS"
        echo "size bin $(size_of "$STAGE/bin"), lib $(size_of "$STAGE/lib") ($(ls "$STAGE/lib" | wc -l) files), gst-plugins $(size_of "$STAGE/gst-plugins"), onnxruntime $(size_of "$STAGE/onnxruntime"), media $(size_of "$STAGE/media"), model $(size_of "$STAGE/model") (uncompressed)"
    } >"$STAGE/manifest"

    say "compressing (xz -9e; a few minutes)"
    rm -rf "$BUNDLE_DIR"
    mkdir -p "$BUNDLE_DIR"
    tar -C "$STAGE" -cf - --owner=0 --group=0 --sort=name . | xz -9e -T0 >"$BUNDLE_DIR/cpu-bundle.tar.xz" || exit 1
    cp "$STAGE/manifest" "$BUNDLE_DIR/manifest"
    echo "archive $(stat -c %s "$BUNDLE_DIR/cpu-bundle.tar.xz") bytes, sha256 $(sha256sum "$BUNDLE_DIR/cpu-bundle.tar.xz" | cut -d' ' -f1)" >>"$BUNDLE_DIR/manifest"
    cat "$BUNDLE_DIR/manifest"
    echo "compressed, by part:"
    for part in bin lib gst-plugins onnxruntime media model; do
        printf '  %-12s %s\n' "$part" "$(tar -C "$STAGE" -cf - "$part" | xz -6 -T0 | wc -c | awk '{ printf "%.1f MiB (xz -6)", $1 / 1048576 }')"
    done
    du -sh "$BUNDLE_DIR"
    echo "cpu_check --bundle: done. Carry $BUNDLE_DIR, then run tools/cpu_check.sh there."
    exit 0
fi

# ------------------------------------------------------------------ unpack

say "bundle $BUNDLE_DIR"
if [ ! -f "$BUNDLE_DIR/cpu-bundle.tar.xz" ]; then
    record "bundle" FAIL "no $BUNDLE_DIR/cpu-bundle.tar.xz: run tools/cpu_check.sh --bundle on the build machine and carry it"
    print_summary
    exit 1
fi
cat "$BUNDLE_DIR/manifest" 2>/dev/null
if [ -f "$WORK/.unpacked" ] && cmp -s "$WORK/manifest" "$BUNDLE_DIR/manifest"; then
    record "unpack" ok "already in $WORK"
else
    rm -rf "$WORK"
    if ! mkdir -p "$WORK" 2>/dev/null || [ ! -w "$WORK" ]; then
        WORK=${TMPDIR:-/tmp}/dreamsim-cpu-check-run
        echo "the repository is not writable here: unpacking into $WORK"
        rm -rf "$WORK"
        mkdir -p "$WORK"
    fi
    t=$(allow 60)
    if command -v python3 >/dev/null; then
        run_step "$t" unpack python3 -c '
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    if hasattr(tarfile, "tar_filter"):
        t.extractall(sys.argv[2], filter="tar")
    else:
        t.extractall(sys.argv[2])
' "$BUNDLE_DIR/cpu-bundle.tar.xz" "$WORK"
    else
        run_step "$t" unpack tar -xJf "$BUNDLE_DIR/cpu-bundle.tar.xz" -C "$WORK"
    fi
    rc=$?
    if [ "$rc" = 0 ]; then
        cp "$BUNDLE_DIR/manifest" "$WORK/manifest"
        touch "$WORK/.unpacked"
        record "unpack" ok "$WORK ($(du -sh "$WORK" | cut -f1), $((SECONDS - START)) s)"
    else
        record "unpack" FAIL "exit $rc; see $LOG/unpack.log"
    fi
fi
W=$(cd "$WORK" && pwd)
# The benchmark: the tool's bench subcommand (bundles made before the tool
# hold the old bench example as bin/bench).
if [ -x "$W/bin/gst-dreamsim" ]; then
    BENCH=("$W/bin/gst-dreamsim" bench)
else
    BENCH=("$W/bin/bench")
fi

# ------------------------------------------------------------------ the machine

say "machine"
uname -srm
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_bf16|amx_bf16|amx_tile|amx_int8|avx512_vnni|avx_vnni' | tr '\n' ' ')
echo "flags: $flags"
echo "CPUs: $(nproc) (this process may use: $(taskset -pc $$ 2>/dev/null | sed 's/.*: //'))"
grep -E '^(MemTotal|MemAvailable)' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo
# A Python with numpy and onnx, for inflating the model.
PY=
for p in ${PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3 python; do
    if command -v "$p" >/dev/null && timeout 30 "$p" -c 'import numpy, onnx' 2>/dev/null; then PY=$p; break; fi
done
echo "glibc $(ldd --version 2>/dev/null | head -n1 | awk '{print $NF}'), python: ${PY:-none with numpy and onnx} $([ -n "$PY" ] && "$PY" -c 'import sys, numpy, onnx; print(sys.version.split()[0], "numpy", numpy.__version__, "onnx", onnx.__version__)' 2>&1 | tail -n1)"
case " $flags " in
    *" amx_bf16 "*|*" avx512_bf16 "*) record "cpu" ok "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' | cut -c1-48); ${flags% }" ;;
    *) record "cpu" WARN "no amx_bf16/avx512_bf16: auto will not pick OpenVINO bf16 here ($flags)" ;;
esac

# ------------------------------------------------------------------ environment

export LD_LIBRARY_PATH=$W/lib:$W/onnxruntime
export GST_PLUGIN_SYSTEM_PATH_1_0=$W/gst-plugins GST_PLUGIN_SYSTEM_PATH=$W/gst-plugins
export GST_PLUGIN_PATH_1_0="" GST_PLUGIN_PATH=""
export GST_PLUGIN_SCANNER_1_0=$W/bin/gst-plugin-scanner GST_PLUGIN_SCANNER=$W/bin/gst-plugin-scanner
export GST_REGISTRY_1_0=$W/gst-registry.bin GST_REGISTRY=$W/gst-registry.bin
export GST_REGISTRY_UPDATE=yes GST_DEBUG_NO_COLOR=1
# The bundled GLib must not load the machine's GIO modules (built against
# another GLib).
mkdir -p "$W/gio-modules"
export GIO_MODULE_DIR=$W/gio-modules GIO_USE_VFS=local
export ORT_DYLIB_PATH=$W/onnxruntime/libonnxruntime.so.$ORT_VERSION
rm -f "$W/gst-registry.bin"
CLIP=$W/media/bikes.avi

# Where each library comes from: everything but glibc must be the bundle's.
{
    for obj in "${BENCH[0]}" "$W"/gst-plugins/*.so "$W"/onnxruntime/*.so*; do
        [ -L "$obj" ] && continue
        ldd "$obj" 2>&1 | sed "s|^|$(basename "$obj"): |"
    done
} >"$LOG/ldd.log"
missing=$(grep -c 'not found' "$LOG/ldd.log")
foreign=$(awk '$3 == "=>" && $4 ~ /^\// { print $4 }' "$LOG/ldd.log" | sort -u | while read -r p; do
    case "$p" in "$W"/*) ;; *) is_glibc "$p" || echo "$p" ;; esac
done)
if [ "$missing" != 0 ]; then
    record "libraries" FAIL "$(grep 'not found' "$LOG/ldd.log" | awk '{print $2}' | sort -u | tr '\n' ' ')not found"
elif [ -n "$foreign" ]; then
    record "libraries" WARN "from outside the bundle: $(echo $foreign)"
else
    record "libraries" ok "all from the bundle except glibc (see ldd.log)"
fi

# ------------------------------------------------------------------ the model

if [ -n "$MODEL" ]; then
    M=$MODEL
    record "model" ok "$M (given)"
else
    M=$W/model/ensemble.onnx
    want=$(awk '$1 == "model_sha256" { print $2 }' "$W/manifest")
    skel_tool=tools/model_skeleton.py
    [ -f "$skel_tool" ] || skel_tool=$W/model/model_skeleton.py
    if [ -f "$W/model/.inflated" ] && [ -f "$M" ]; then
        record "model" ok "already inflated: $(cat "$W/model/.inflated")"
    else
        t=$(allow 90)
        say "inflating the model, at most ${t}s"
        run_step "$t" inflate "${PY:-python3}" "$skel_tool" inflate "$W/model/ensemble.skel.onnx" "$M" --expect "$want"
        rc=$?
        got=$(awk '/^sha256 / { print $2 }' "$LOG/inflate.log")
        if [ "$rc" = 0 ]; then
            echo "sha256 $got, as bundled" >"$W/model/.inflated"
            record "model" ok "inflated, sha256 ${got:0:16}... identical to the bundler's"
        elif [ "$rc" = 3 ]; then
            echo "sha256 $got, NOT the bundler's $want" >"$W/model/.inflated"
            record "model" WARN "inflated, but sha256 ${got:0:16}... differs from the bundler's ${want:0:16}... (other weights; still usable)"
        else
            rm -f "$M"
            record "model" FAIL "inflate exit $rc; see $LOG/inflate.log (needs a python3 with numpy and onnx: PYTHON=...)"
        fi
    fi
fi

# ------------------------------------------------------------------ the bench's options

usage=$("${BENCH[@]}" --help 2>&1)
has() { grep -q -- "$1" <<<"$usage"; }
FRAME_ARGS=() FULL_ARGS=() AGREE_ARGS=()
missing_flags=
if has --frames; then FRAME_ARGS=(--frames "$FRAMES"); else missing_flags+="--frames "; fi
if has --full-precision; then FULL_ARGS=(--full-precision); else missing_flags+="--full-precision "; fi
if has --agreement; then AGREE_ARGS=(--agreement); else missing_flags+="--agreement "; fi
[ -n "$missing_flags" ] && record "bench options" WARN "this bench lacks ${missing_flags% } (rebuild the bundle): run without"
PIN=()
if command -v taskset >/dev/null && taskset -c 0,1 true 2>/dev/null; then
    PIN=(taskset -c "0,1")
else
    record "taskset" WARN "taskset -c 0,1 unavailable: runs are not pinned to 2 cores"
fi

# bench_summary LOG: the bench's result lines, shortened.
bench_summary() {
    grep -E ' on [a-z]+.*:$|frames/s|per frame|cores busy|agreement|Spearman|peak resident|precision|fallback|unavailable' "$1" \
        | grep -v '^decode only' | sed 's/^ *//' | cut -c1-160
}
# bench_step NAME CAP DESCRIPTION ARGS...
bench_step() {
    local name=$1 cap=$2 what=$3; shift 3
    local t rc
    t=$(allow "$cap")
    say "$what, at most ${t}s"
    GST_DEBUG="${GST_DEBUG:-dreamsim*:4}" GST_DEBUG_FILE="$LOG/$name.gst.log" \
        run_step "$t" "$name" ${PIN[@]+"${PIN[@]}"} "${BENCH[@]}" "$@"
    rc=$?
    if [ "$rc" = 0 ]; then
        local provider rate
        provider=$(grep -m1 -oE ' on [A-Za-z0-9_-]+.*:$' "$LOG/$name.log" | sed 's/^ on //; s/:$//')
        rate=$(grep -m1 -oE '[0-9.]+ frames/s' "$LOG/$name.log" | tail -n1)
        record "$name" ok "${provider:-?}: $(grep -m1 -oE '[0-9]+ frames in [0-9.]+ s[^(]*frames/s' "$LOG/$name.log" || echo "$rate")"
    elif [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
        record "$name" FAIL "timed out after ${t}s (see $LOG/$name.log)"
    else
        record "$name" FAIL "exit $rc: $(grep -vE '^\s*$' "$LOG/$name.log" | tail -n1 | cut -c1-150)"
    fi
    return "$rc"
}

# ------------------------------------------------------------------ the pipeline works (2 frames, small model)

SMOKE_MODEL=$ROOT/tests/fixtures/tiny_ensemble.onnx
if [ -x "${BENCH[0]}" ] && [ -f "$SMOKE_MODEL" ]; then
    smoke_frames=(); has --frames && smoke_frames=(--frames 2)
    bench_step smoke-cpu 30 "the pipeline with a tiny model, cpu" "$CLIP" --model "$SMOKE_MODEL" \
        ${smoke_frames[@]+"${smoke_frames[@]}"} --provider cpu
    bench_step smoke-openvino 40 "the pipeline with a tiny model, openvino" "$CLIP" --model "$SMOKE_MODEL" \
        ${smoke_frames[@]+"${smoke_frames[@]}"} --provider openvino
fi

# ------------------------------------------------------------------ the measurements

if [ -x "${BENCH[0]}" ] && [ -f "$M" ]; then
    bench_step fp32-cpu 90 "(a) fp32 on the CPU provider, 2 threads, batch 8, ${FRAMES} frames" \
        "$CLIP" --model "$M" --threads 2 --batch-size 8 --provider cpu \
        ${FULL_ARGS[@]+"${FULL_ARGS[@]}"} ${FRAME_ARGS[@]+"${FRAME_ARGS[@]}"}
    bench_step auto 150 "(b) auto (OpenVINO bf16 expected) with its agreement with fp32, ${FRAMES} frames" \
        "$CLIP" --model "$M" --threads 2 --batch-size 8 \
        ${AGREE_ARGS[@]+"${AGREE_ARGS[@]}"} ${FRAME_ARGS[@]+"${FRAME_ARGS[@]}"}
    if line=$(grep -m1 -E '^agreement of .* with cpu fp32' "$LOG/auto.log"); then
        record "agreement" ok "$(sed -E 's/^agreement of (.*) with cpu fp32 over/\1 vs fp32,/' <<<"$line" | cut -c1-150)"
    fi
else
    record "measurements" FAIL "no bench binary or no model"
fi

# ------------------------------------------------------------------ summary

echo
say "summary ($((SECONDS - START)) s; logs in $LOG)"
print_summary
for name in fp32-cpu auto; do
    [ -s "$LOG/$name.log" ] || continue
    echo
    echo "[$name] $(grep -m1 -E '^decode only' "$LOG/$name.log")"
    bench_summary "$LOG/$name.log"
    grep -hE 'Build Info|computing in|runs on the|unavailable|[Ff]all' "$LOG/$name.gst.log" 2>/dev/null \
        | sed 's/^.*:<[a-z0-9]*> //' | sort -u | head -n 6 | cut -c1-200
done
[ "$FAILURES" = 0 ]
