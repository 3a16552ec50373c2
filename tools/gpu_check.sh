#!/usr/bin/env bash
# The GPU check of gst-dreamsim's `cuda` feature: on a machine with an NVIDIA
# GPU, runs the GPU-vs-CPU preprocessing equality tests on synthetic and real
# frames, the engine and the element end to end on whatever execution
# provider starts there, and the upload+preprocess benchmark next to the CPU
# path; prints a summary table last. Every step has a hard timeout and the
# whole run stays under 5 minutes; what cannot run is reported as SKIPPED
# with the reason, never hangs.
#
# Usage (from the repository root):
#   tools/gpu_check.sh --bundle [DIR]
#       On a build machine with Rust (no GPU needed): builds the release test
#       binary, the benchmark and the plugin with --features cuda and copies
#       them, stripped, with the ONNX Runtime 1.31 CPU library, into DIR
#       (default .cache/gpu-bundle). Carry DIR (and .cache/media for the real
#       frames) to a GPU machine that has no Rust toolchain or no network.
#   tools/gpu_check.sh [--bundle-dir DIR] [--bench-seconds S] [--no-build]
#       On the GPU machine: uses DIR's binaries when DIR/manifest exists,
#       otherwise builds them with cargo (offline first: a fresh machine
#       without network needs ~/.cargo/registry or a vendored source), then
#       runs the checks. Logs go to $OUT (if set) or /tmp/dreamsim-gpu-check.
#
# Libraries it looks for on the GPU machine, and where:
#   libcuda.so.1           the driver (ldconfig, /usr/local/nvidia/lib64)
#   libnvrtc.so.13         $CUDA_HOME/lib64, /usr/local/cuda/lib64, or a pip
#                          nvidia-cuda-nvrtc wheel (site-packages/nvidia/cu13/lib)
#   libonnxruntime.so      ORT_DYLIB_PATH if set, the bundle's copy, or the
#                          Python onnxruntime / onnxruntime-gpu package's capi/
#                          folder, if it is 1.24 or newer (older ones are refused
#                          by the ort crate with BadVersion)
#   CUDA 13 + cuDNN 9      for onnxruntime-gpu's CUDA provider: the pip
#                          nvidia-* wheels' lib folders (PyTorch brings them)
#   libnvinfer.so.10       for the TensorRT provider (tensorrt-cu13 wheels)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUNDLE_DIR=.cache/gpu-bundle
BENCH_SECONDS=1
MODE=check
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) MODE=bundle; if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then BUNDLE_DIR=$2; shift; fi; shift ;;
        --bundle-dir) BUNDLE_DIR=$2; shift 2 ;;
        --bench-seconds) BENCH_SECONDS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown option $1" >&2; exit 2 ;;
    esac
done

# ------------------------------------------------------------------ helpers

BUDGET=${GPU_CHECK_BUDGET:-285}   # seconds for the whole run
LOG=${OUT:-/tmp/dreamsim-gpu-check}
mkdir -p "$LOG"

STEP_WIDTH=28
# shellcheck source=tools/check_steps.sh
. "$ROOT/tools/check_steps.sh"
ver_ge() { # ver_ge A B: version A >= B
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}
python_sitepackages() {
    command -v python3 >/dev/null || return 0
    timeout 20 python3 - <<'EOF' 2>/dev/null
import site, sys
paths = set(site.getsitepackages() + [site.getusersitepackages()])
for p in sorted(paths):
    print(p)
EOF
}
add_ld_path() {
    case ":${LD_LIBRARY_PATH:-}:" in
        *":$1:"*) ;;
        *) export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
    esac
}
# first file matching a glob pattern in the given directories
find_in() {
    local pattern=$1; shift
    local d f
    for d in "$@"; do
        [ -d "$d" ] || continue
        for f in "$d"/$pattern; do
            [ -e "$f" ] && { echo "$f"; return 0; }
        done
    done
    return 1
}

# Builds the release binaries with cargo; sets TEST_BIN, BENCH_BIN, PLUGIN_SO.
cargo_build() {
    local t offline=--offline
    command -v cargo >/dev/null || return 3
    t=$(allow 240)
    say "building with cargo (release, --features cuda), at most ${t}s"
    if ! run_step "$t" build-tests cargo test --release --features cuda --test cuda --no-run $offline \
            --message-format=json-render-diagnostics >"$LOG/build-tests.json"; then
        offline=
        t=$(allow 240)
        run_step "$t" build-tests cargo test --release --features cuda --test cuda --no-run \
            --message-format=json-render-diagnostics >"$LOG/build-tests.json" || return 1
    fi
    TEST_BIN=$(python3 - "$LOG/build-tests.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "cuda" \
            and m.get("executable"):
        print(m["executable"])
EOF
)
    t=$(allow 120)
    run_step "$t" build-bench cargo build --release --features cuda --example gpu_preprocess_bench $offline \
        && BENCH_BIN=target/release/examples/gpu_preprocess_bench
    t=$(allow 120)
    run_step "$t" build-plugin cargo build --release -p gst-plugin-dreamsim --features cuda $offline \
        && PLUGIN_SO=target/release/libgstdreamsim.so
    [ -n "$TEST_BIN" ]
}

# ------------------------------------------------------------------ --bundle

if [ "$MODE" = bundle ]; then
    command -v cargo >/dev/null || { echo "gpu_check --bundle: cargo not found" >&2; exit 1; }
    TEST_BIN= BENCH_BIN= PLUGIN_SO=
    cargo_build || { echo "gpu_check --bundle: the build failed (logs in $LOG)" >&2; exit 1; }
    rm -rf "$BUNDLE_DIR"
    mkdir -p "$BUNDLE_DIR/bin" "$BUNDLE_DIR/lib" "$BUNDLE_DIR/onnxruntime"
    cp "$TEST_BIN" "$BUNDLE_DIR/bin/cuda-tests"
    if [ -n "$BENCH_BIN" ]; then cp "$BENCH_BIN" "$BUNDLE_DIR/bin/gpu_preprocess_bench"; else echo "gpu_check --bundle: benchmark not built (see $LOG/build-bench.log)"; fi
    if [ -n "$PLUGIN_SO" ]; then cp "$PLUGIN_SO" "$BUNDLE_DIR/lib/"; else echo "gpu_check --bundle: plugin not built (see $LOG/build-plugin.log); the element check will be skipped"; fi
    command -v strip >/dev/null && strip --strip-debug "$BUNDLE_DIR"/bin/* "$BUNDLE_DIR"/lib/*.so 2>/dev/null
    # Real frames for GPU machines without GStreamer: bikes.mp4 decoded here
    # (by the tests) at its own size and an odd size (1080p and 2160p raw
    # frames are too large to carry; those sizes are then skipped there).
    frames_tmp=$(mktemp -d)
    if command -v gst-launch-1.0 >/dev/null && [ -e .cache/media/bikes.mp4 ]; then
        TMPDIR=$frames_tmp timeout 300 "$BUNDLE_DIR/bin/cuda-tests" --exact emulated_kernels_equal_the_cpu_on_real_frames >/dev/null 2>&1
        mkdir -p "$BUNDLE_DIR/frames"
        for f in target/tmp/bikes_*_640x272_3.raw target/tmp/bikes_*_641x359_1.raw \
                 "$frames_tmp"/dreamsim-cuda-tests/bikes_*_640x272_3.raw "$frames_tmp"/dreamsim-cuda-tests/bikes_*_641x359_1.raw; do
            [ -e "$f" ] && cp "$f" "$BUNDLE_DIR/frames/"
        done
    fi
    rm -rf "$frames_tmp"
    # The ONNX Runtime CPU library this build was tested with (1.31): GPU
    # images may ship an older Python onnxruntime.
    ort=${ORT_DYLIB_PATH:-${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime/libonnxruntime.so}
    if [ -e "$ort" ]; then
        real=$(readlink -f "$ort")
        cp "$real" "$BUNDLE_DIR/onnxruntime/"
        for p in "$(dirname "$real")"/libonnxruntime_providers_*.so; do [ -e "$p" ] && cp "$p" "$BUNDLE_DIR/onnxruntime/"; done
    else
        echo "gpu_check --bundle: no ONNX Runtime library at $ort (run tools/get_onnxruntime.sh); not bundled"
    fi
    {
        echo "commit $(git rev-parse --short=12 HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo -dirty)"
        echo "kernels $(sha256sum src/cuda/kernels.cu | cut -d' ' -f1)"
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), glibc $(ldd --version 2>/dev/null | head -n1 | awk '{print $NF}')"
    } >"$BUNDLE_DIR/manifest"
    du -sh "$BUNDLE_DIR"
    cat "$BUNDLE_DIR/manifest"
    echo "gpu_check --bundle: done. Carry $BUNDLE_DIR and .cache/media, then run tools/gpu_check.sh there."
    exit 0
fi

# ------------------------------------------------------------------ the machine

say "machine"
uname -srm
command -v lscpu >/dev/null && lscpu | grep -m1 'Model name' | sed 's/  */ /g'
echo "CPU threads: $(nproc 2>/dev/null || echo ?)"
GPU_OK=0
if command -v nvidia-smi >/dev/null; then
    if GPU_INFO=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1); then
        echo "$GPU_INFO"
        GPU_OK=1
        record "gpu" ok "$(echo "$GPU_INFO" | head -n1)"
    else
        record "gpu" FAIL "nvidia-smi: $GPU_INFO"
    fi
else
    record "gpu" SKIPPED "no nvidia-smi: not an NVIDIA machine; the GPU tests will skip"
fi
CC_ARCH=$(echo "${GPU_INFO:-}" | head -n1 | awk -F', ' '{print $3}' | tr -d '.')

SITE=$(python_sitepackages)
NV_DIRS=()
for s in $SITE; do
    for d in "$s"/nvidia/*/lib "$s"/nvidia/cu13/lib "$s"/tensorrt_libs "$s"/tensorrt; do
        [ -d "$d" ] && NV_DIRS+=("$d")
    done
done

# libcuda
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
    record "libcuda" ok "$(ldconfig -p | grep -m1 'libcuda\.so\.1' | awk '{print $NF}')"
elif f=$(find_in 'libcuda.so.1' /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64); then
    add_ld_path "$(dirname "$f")"
    record "libcuda" ok "$f"
else
    record "libcuda" SKIPPED "not found: no NVIDIA driver; GPU tests skip"
fi

# NVRTC (the kernels are compiled at run time)
if f=$(find_in 'libnvrtc.so.13*' ${CUDA_HOME:+"$CUDA_HOME/lib64"} ${CUDA_PATH:+"$CUDA_PATH/lib64"} \
        /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib "${NV_DIRS[@]}" /usr/lib/x86_64-linux-gnu); then
    add_ld_path "$(dirname "$f")"
    record "nvrtc" ok "$f"
else
    record "nvrtc" SKIPPED "libnvrtc.so.13 not found (CUDA toolkit or pip nvidia-cuda-nvrtc); GPU preprocessing cannot start"
fi

# CUDA 13 runtime, cuBLAS, cuDNN 9, TensorRT for onnxruntime-gpu: every pip
# nvidia-* lib folder goes on the path.
for d in "${NV_DIRS[@]}"; do add_ld_path "$d"; done
if f=$(find_in 'libcudnn.so.9*' "${NV_DIRS[@]}" /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64); then
    record "cudnn 9" ok "$f"
else
    record "cudnn 9" SKIPPED "libcudnn.so.9 not found: the cuda provider cannot start"
fi
if f=$(find_in 'libnvinfer.so.10*' "${NV_DIRS[@]}" /usr/lib/x86_64-linux-gnu /usr/local/tensorrt/lib); then
    add_ld_path "$(dirname "$f")"
    record "tensorrt 10" ok "$f"
else
    record "tensorrt 10" SKIPPED "libnvinfer.so.10 not found: the tensorrt provider cannot start"
fi

# ONNX Runtime >= 1.24, preferring one with the GPU providers.
ort_version() { basename "$1" | sed -n 's/^libonnxruntime\.so\.\([0-9.]*\)$/\1/p'; }
ORT_CANDIDATES=()
[ -n "${ORT_DYLIB_PATH:-}" ] && ORT_CANDIDATES+=("$ORT_DYLIB_PATH")
for f in "$BUNDLE_DIR"/onnxruntime/libonnxruntime.so.1.*; do [ -e "$f" ] && ORT_CANDIDATES+=("$f"); done
PY_ORT=
if command -v python3 >/dev/null; then
    PY_ORT=$(timeout 60 python3 -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__), onnxruntime.__version__, ",".join(onnxruntime.get_available_providers()))' 2>/dev/null || true)
fi
if [ -n "$PY_ORT" ]; then
    read -r py_dir py_ver py_providers <<<"$PY_ORT"
    echo "Python onnxruntime $py_ver at $py_dir ($py_providers)"
    for f in "$py_dir"/capi/libonnxruntime.so.1.*; do [ -e "$f" ] && ORT_CANDIDATES+=("$f"); done
fi
ORT_CPU= ORT_GPU=
for f in "${ORT_CANDIDATES[@]}"; do
    f=$(readlink -f "$f" 2>/dev/null || echo "$f")
    [ -e "$f" ] || continue
    v=$(ort_version "$f")
    if [ -z "$v" ] || ! ver_ge "$v" 1.24; then
        echo "ONNX Runtime ${v:-?} at $f is older than 1.24 (the ort crate refuses it): not used"
        continue
    fi
    if [ -e "$(dirname "$f")/libonnxruntime_providers_cuda.so" ]; then
        [ -z "$ORT_GPU" ] && ORT_GPU=$f
    else
        [ -z "$ORT_CPU" ] && ORT_CPU=$f
    fi
done
if [ -n "$ORT_GPU" ]; then
    export ORT_DYLIB_PATH=$ORT_GPU
    record "onnxruntime" ok "GPU build $ORT_GPU"
elif [ -n "$ORT_CPU" ]; then
    export ORT_DYLIB_PATH=$ORT_CPU
    record "onnxruntime" ok "CPU build only ($ORT_CPU): cuda/tensorrt providers will be skipped"
else
    unset ORT_DYLIB_PATH
    record "onnxruntime" SKIPPED "no ONNX Runtime >= 1.24 (bundle one with --bundle, or install onnxruntime-gpu 1.31): engine/element runs skipped"
fi

# ------------------------------------------------------------------ binaries

TEST_BIN= BENCH_BIN= PLUGIN_SO=
if [ -f "$BUNDLE_DIR/manifest" ]; then
    say "using the prebuilt bundle in $BUNDLE_DIR"
    cat "$BUNDLE_DIR/manifest"
    want=$(grep '^kernels ' "$BUNDLE_DIR/manifest" | cut -d' ' -f2)
    have=$(sha256sum src/cuda/kernels.cu | cut -d' ' -f1)
    [ "$want" = "$have" ] || echo "WARNING: the bundle was built from another kernels.cu than this tree's: rebuild it"
    [ -x "$BUNDLE_DIR/bin/cuda-tests" ] && TEST_BIN=$BUNDLE_DIR/bin/cuda-tests
    [ -x "$BUNDLE_DIR/bin/gpu_preprocess_bench" ] && BENCH_BIN=$BUNDLE_DIR/bin/gpu_preprocess_bench
    [ -e "$BUNDLE_DIR/lib/libgstdreamsim.so" ] && PLUGIN_SO=$BUNDLE_DIR/lib/libgstdreamsim.so
    [ -d "$BUNDLE_DIR/frames" ] && export DREAMSIM_TEST_FRAMES=$(cd "$BUNDLE_DIR/frames" && pwd)
    record "binaries" ok "prebuilt bundle ($(head -n1 "$BUNDLE_DIR/manifest"))"
elif [ "$BUILD" = 1 ] && command -v cargo >/dev/null; then
    if cargo_build; then
        record "binaries" ok "built here with cargo"
    else
        record "binaries" FAIL "cargo build failed (logs in $LOG/build-*.log); offline builds need ~/.cargo/registry or a vendor dir"
    fi
else
    record "binaries" FAIL "no prebuilt bundle in $BUNDLE_DIR and no cargo here: run tools/gpu_check.sh --bundle on a build machine and carry $BUNDLE_DIR"
fi

# ------------------------------------------------------------------ nvcc (independent compile check)

if command -v nvcc >/dev/null && [ -n "$CC_ARCH" ]; then
    t=$(allow 60)
    if run_step "$t" nvcc nvcc -arch="sm_$CC_ARCH" --fmad=false -cubin -o "$LOG/kernels.cubin" src/cuda/kernels.cu; then
        record "nvcc kernels.cu" ok "compiled for sm_$CC_ARCH"
    else
        record "nvcc kernels.cu" FAIL "see $LOG/nvcc.log"
    fi
else
    record "nvcc kernels.cu" SKIPPED "no nvcc or no GPU (NVRTC compiles them at run time anyway)"
fi

# ------------------------------------------------------------------ equality tests

if [ -n "$TEST_BIN" ]; then
    skip_args=()
    [ -z "${ORT_DYLIB_PATH:-}" ] && skip_args+=(--skip without_a_gpu_provider_the_engine_preprocesses_on_the_cpu)
    t=$(allow 150)
    say "tests/cuda.rs (GPU vs CPU on synthetic and real frames, engine end to end), at most ${t}s"
    # The GPU tests are #[ignore]d where CI runs (no GPU): include them here.
    run_step "$t" tests "$TEST_BIN" --include-ignored --nocapture --test-threads=4 ${skip_args[@]+"${skip_args[@]}"}
    rc=$?
    result=$(grep -E '^test result:' "$LOG/tests.log" | tail -n1)
    if [ "$rc" = 0 ]; then
        record "tests/cuda.rs" ok "${result#test result: }"
    elif [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
        record "tests/cuda.rs" FAIL "timed out after ${t}s"
    else
        record "tests/cuda.rs" FAIL "${result:-exit $rc}; see $LOG/tests.log"
    fi
    while read -r line; do
        record "  ${line%%:*}" SKIPPED "${line#*: }"
    done < <(grep -E '^SKIPPED ' "$LOG/tests.log" | sed 's/^SKIPPED //' | sort -u)
    while read -r line; do
        record "  checked" ok "$line"
    done < <(grep -E 'byte-identical|agrees with the CPU provider|kernels loaded as|^NVRTC .* compiled|^tensorrt cache: ' "$LOG/tests.log" | sort -u | head -n 10)
else
    record "tests/cuda.rs" SKIPPED "no test binary"
fi

# ------------------------------------------------------------------ the element end to end

if ! command -v gst-launch-1.0 >/dev/null; then
    record "element" SKIPPED "no gst-launch-1.0 on this machine (the engine end-to-end test above covers the engine)"
elif [ -z "$PLUGIN_SO" ]; then
    record "element" SKIPPED "no plugin library built"
elif [ -z "${ORT_DYLIB_PATH:-}" ]; then
    record "element" SKIPPED "no usable ONNX Runtime"
else
    export GST_PLUGIN_PATH=$(dirname "$(readlink -f "$PLUGIN_SO")")
    export GST_REGISTRY=$LOG/gst-registry.bin
    # The first checks of a GPU run (docs/gpu.md, "Checks for a GPU run"):
    # the engine cache folder is a nested one that does not exist yet (the
    # element must create it with its parents), ONNX Runtime's verbose log
    # (the dreamsim-ort category at LOG) says where the nodes went, and a
    # run with fp16=true shows TensorRT's "FP16 mode is enabled" line.
    for run in tensorrt tensorrt-fp16 cuda auto cpu; do
        provider=${run%-fp16}
        fp16=false
        [ "$run" != "$provider" ] && fp16=true
        t=$(allow 45)
        cache_root="$LOG/trt-cache-$run"
        rm -rf "$cache_root"
        cache="$cache_root/nested/missing"
        GST_DEBUG="dreamsim*:4,dreamsim-ort:6" GST_DEBUG_NO_COLOR=1 run_step "$t" "element-$run" gst-launch-1.0 -m \
            videotestsrc num-buffers=24 pattern=ball \
            ! "video/x-raw,format=NV12,width=1920,height=1080,framerate=25/1" \
            ! dreamsim model-location="$ROOT/tests/fixtures/tiny_ensemble.onnx" \
                execution-provider=$provider engine-cache-location="$cache" fp16=$fp16 \
            ! fakesink >/dev/null
        rc=$?
        log="$LOG/element-$run.log"
        # The element's own words: the provider warning it posts, and any
        # log line about where frames are preprocessed.
        info=$(grep -oE '(DreamSim runs on|[Pp]reprocess).*' "$log" | sort -u | head -n 2 | tr '\n' ' ' | cut -c1-200)
        if [ "$rc" = 0 ] && grep -q 'dreamsim' "$log"; then
            record "element $run" ok "${info:-ran (see $log)}"
        elif [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
            record "element $run" FAIL "timed out"
            continue
        elif grep -qiE 'could not be started|cannot be started|unavailable' "$log"; then
            record "element $run" SKIPPED "$(grep -iE 'could not be started|cannot be started' "$log" | head -n1 | cut -c1-200)"
            continue
        else
            record "element $run" FAIL "exit $rc; see $log"
            continue
        fi
        # Which provider took the nodes, from ONNX Runtime's verbose log
        # ("All nodes placed on [X]. Number of nodes: N", or one "Node(s)
        # placed on [X]" line per provider when the graph is split).
        placement=$(grep -oE '(All nodes|Node\(s\)) placed on \[[A-Za-z]+\]\. Number of nodes: [0-9]+' "$log" \
            | sed -E 's/.*\[([A-Za-z]+)ExecutionProvider\]\. Number of nodes: ([0-9]+)/\1 \2/' | sort -u | tr '\n' ' ')
        if [ -n "$placement" ]; then
            record "  node placement" ok "$placement"
        else
            record "  node placement" WARN "no placement line in the verbose log ($log)"
        fi
        case "$run" in
        tensorrt*)
            cache_files=$(find "$cache" -type f 2>/dev/null | wc -l)
            if [ "$cache_files" -gt 0 ]; then
                record "  nested cache folder" ok "$cache_files files in $(find "$cache" -mindepth 1 -maxdepth 1 -type d | head -n1)"
            else
                record "  nested cache folder" FAIL "$cache was not created or holds no engine"
            fi
            if [ "$fp16" = true ]; then
                # ONNX Runtime's TensorRT provider logs the line (verbose)
                # and puts _fp16 in the engine file's name.
                fp16_files=$(find "$cache" -type f -name '*fp16*' 2>/dev/null | wc -l)
                if grep -q 'FP16 mode is enabled' "$log"; then
                    record "  fp16 engine" ok "TensorRT EP: FP16 mode is enabled ($fp16_files _fp16 files)"
                elif [ "$fp16_files" -gt 0 ]; then
                    record "  fp16 engine" WARN "no 'FP16 mode is enabled' line, but $fp16_files _fp16 engine files"
                else
                    record "  fp16 engine" FAIL "no 'FP16 mode is enabled' line in $log and no _fp16 engine file"
                fi
                grep -q 'in fp16' "$log" || record "  active precision" FAIL "the start-up message does not say fp16"
            elif grep -q 'in tf32' "$log"; then
                record "  active precision" ok "tf32 (TensorRT's fp32 engines), as the element says"
            else
                record "  active precision" FAIL "the start-up message does not say tf32"
            fi
            ;;
        esac
    done
fi

# ------------------------------------------------------------------ benchmark

BENCH_TABLE=
if [ -n "$BENCH_BIN" ]; then
    t=$(allow 100)
    say "benchmark: upload+preprocess, GPU vs CPU, at most ${t}s"
    if run_step "$t" bench "$BENCH_BIN" --seconds "$BENCH_SECONDS"; then
        if grep -q '^SKIPPED' "$LOG/bench.log"; then
            record "benchmark" SKIPPED "$(grep '^SKIPPED' "$LOG/bench.log" | head -n1)"
        else
            record "benchmark" ok "table below"
            BENCH_TABLE=$(grep -E '^(device|format|NV12|RGBA|upload)' "$LOG/bench.log")
        fi
    else
        record "benchmark" FAIL "see $LOG/bench.log"
    fi
else
    record "benchmark" SKIPPED "no benchmark binary"
fi

# ------------------------------------------------------------------ summary

echo
say "summary ($((SECONDS - START)) s; logs in $LOG)"
print_summary
if [ -n "$BENCH_TABLE" ]; then
    echo
    echo "$BENCH_TABLE"
fi
[ "$FAILURES" = 0 ]
