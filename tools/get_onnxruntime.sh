#!/usr/bin/env bash
# Installs the ONNX Runtime library that the dreamsim element loads at run
# time, from a wheel on PyPI (no build, no root needed):
#   $DEST/libonnxruntime.so -> libonnxruntime.so.<version>
# DEST defaults to ${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime,
# one of the places the element searches by default. Running it again when
# the same build is already there does nothing.
#
# Usage: tools/get_onnxruntime.sh [--build auto|cpu|openvino|gpu] [--version V] [--dest DIR]
#                                 [--tensorrt] [--wheel-cache DIR]
#   --build cpu       onnxruntime 1.31.1: the CPU provider, fp32.
#   --build openvino  onnxruntime-openvino 1.24.1: the CPU provider plus
#                     OpenVINO, which computes in bf16 on processors with
#                     bf16 matrix units (AMX, AVX512-BF16): the element's
#                     fast CPU path (README, "Throughput").
#   --build gpu       onnxruntime-gpu 1.31.1 with its provider libraries and
#                     the NVIDIA runtime it needs, from NVIDIA's PyPI wheels:
#                     CUDA runtime, cuBLAS, cuRAND, cuFFT (+ nvJitLink), NVRTC (CUDA 13)
#                     and cuDNN 9, unpacked into DEST/nvidia/ (the element
#                     preloads them from there: no LD_LIBRARY_PATH). About
#                     1.6 GB to download, 3 GB installed. The NVIDIA driver
#                     (580 or newer) is the one thing it does not install.
#   --tensorrt        with --build gpu: TensorRT 10's libraries too
#                     (tensorrt-cu13-libs; PyPI holds a stub that fetches
#                     the wheel from NVIDIA's own package index).
#   --wheel-cache DIR keep the downloaded wheels in DIR and reuse them
#                     (default: a temporary folder, deleted afterwards).
#   --build auto      (default) openvino where /proc/cpuinfo shows amx_bf16 or
#                     avx512_bf16, cpu otherwise.
#   --gpu             the same as --build gpu (older spelling).
set -euo pipefail

build=auto
version=
tensorrt=
wheel_cache=
dest="${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime"
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        --dest) dest="$2"; shift 2 ;;
        --gpu) build=gpu; shift ;;
        --tensorrt) tensorrt=1; shift ;;
        --wheel-cache) wheel_cache="$2"; shift 2 ;;
        -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
        *) echo "get_onnxruntime: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$build" = auto ]; then
    if [ "$(uname -m)" = x86_64 ] && grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo 2>/dev/null; then
        build=openvino
        echo "get_onnxruntime: this processor has bf16 matrix units: taking the OpenVINO build (--build cpu for the plain one)"
    else
        build=cpu
    fi
fi
case "$build" in
    cpu) package=onnxruntime; default_version=1.31.1 ;;
    gpu) package=onnxruntime-gpu; default_version=1.31.1 ;;
    # The newest onnxruntime-openvino on PyPI; the element's ort API level
    # (api-24) is chosen so that it loads.
    openvino) package=onnxruntime-openvino; default_version=1.24.1 ;;
    *) echo "get_onnxruntime: unknown build $build (auto, cpu, openvino or gpu)" >&2; exit 2 ;;
esac
version=${version:-$default_version}
[ -n "$tensorrt" ] && [ "$build" != gpu ] && {
    echo "get_onnxruntime: --tensorrt goes with --build gpu" >&2; exit 2; }

# The NVIDIA runtime of onnxruntime-gpu 1.31.1, pinned. The CUDA packages
# are the CUDA 13.0 releases (the oldest driver that runs CUDA 13, 580,
# runs them); check_pins below holds them to what the onnxruntime-gpu
# wheel and the cuDNN wheel declare they need.
nvidia_pins=(
    nvidia-cuda-runtime==13.0.96
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
    nvidia-cufft==12.0.0.61
    nvidia-nvjitlink==13.0.88
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cudnn-cu13==9.28.1.4
)
tensorrt_pin=tensorrt-cu13-libs==10.16.1.11
manifest="$package==$version"
if [ "$build" = gpu ]; then
    manifest="$manifest ${nvidia_pins[*]}"
    [ -n "$tensorrt" ] && manifest="$manifest $tensorrt_pin"
fi

lib="$dest/libonnxruntime.so.$version"
if [ -f "$lib" ] && [ -L "$dest/libonnxruntime.so" ] && [ -f "$dest/.package" ] \
    && [ "$(cat "$dest/.package")" = "$manifest" ]; then
    echo "get_onnxruntime: $package $version already in $dest"
    exit 0
fi

command -v python3 >/dev/null || { echo "get_onnxruntime: python3 is needed to fetch the wheel" >&2; exit 1; }
arch=$(uname -m)
case "$arch" in
    x86_64) platform=manylinux_2_28_x86_64 ;;
    aarch64) platform=manylinux_2_28_aarch64 ;;
    *) echo "get_onnxruntime: no $package wheel for $arch; build ONNX Runtime yourself and set ORT_DYLIB_PATH" >&2; exit 1 ;;
esac
[ "$build" = openvino ] && [ "$arch" != x86_64 ] && {
    echo "get_onnxruntime: onnxruntime-openvino is published for x86-64 only; use --build cpu" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wheels="${wheel_cache:-$tmp/wheels}"
mkdir -p "$wheels"
started=$SECONDS
# pip download: one wheel, the exact pin, no dependencies; a wheel already
# in the cache folder is reused. The NVIDIA wheels are tagged for older
# glibc baselines than onnxruntime's, hence the list of platforms.
fetch() {
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform "$platform" --platform "${platform/2_28/2_27}" \
        --platform "${platform/2_28/2_17}" --platform "manylinux2014_${arch}" \
        "$1" -d "$wheels"
}
wheel_of() {  # the cached wheel of package==version
    local name=${1%%==*} v=${1##*==}
    ls "$wheels/${name//-/_}-$v-"*.whl 2>/dev/null | head -1
}
echo "get_onnxruntime: downloading $package==$version ($platform) from PyPI"
if ! fetch "$package==$version"; then
    echo "get_onnxruntime: download failed (offline, or no such version?). Set ORT_DYLIB_PATH to an existing libonnxruntime.so instead." >&2
    exit 1
fi
if [ "$build" = gpu ]; then
    for pin in "${nvidia_pins[@]}"; do
        echo "get_onnxruntime: downloading $pin"
        fetch "$pin" || { echo "get_onnxruntime: could not download $pin from PyPI" >&2; exit 1; }
    done
    if [ -n "$tensorrt" ] && [ -z "$(wheel_of "$tensorrt_pin")" ]; then
        # PyPI holds only a stub of this package: building it (pip wheel)
        # fetches the real wheel from NVIDIA's package index.
        echo "get_onnxruntime: fetching $tensorrt_pin (through its PyPI stub)"
        if ! python3 -m pip wheel --quiet --no-deps "$tensorrt_pin" -w "$wheels" >"$tmp/trt.log" 2>&1; then
            tail -5 "$tmp/trt.log" >&2
            echo "get_onnxruntime: $tensorrt_pin could not be fetched: PyPI has only a stub that downloads the wheel from NVIDIA's package index, which this machine cannot reach. Run again without --tensorrt (the cuda provider), or where that index is reachable." >&2
            exit 1
        fi
    fi
fi
python3 -m zipfile -e "$(wheel_of "$package==$version")" "$tmp/x"
capi="$tmp/x/onnxruntime/capi"
if [ "$build" = gpu ]; then
    # The pins against what the wheels declare: onnxruntime-gpu's `cuda` and
    # `cudnn` extras, cuDNN's own requirements.
    pins=("${nvidia_pins[@]}")
    [ -n "$tensorrt" ] && pins+=("$tensorrt_pin")
    wheel_files=("$(wheel_of "$package==$version")")
    for pin in "${pins[@]}"; do
        w=$(wheel_of "$pin")
        [ -n "$w" ] || { echo "get_onnxruntime: no wheel for $pin in $wheels" >&2; exit 1; }
        wheel_files+=("$w")
    done
    python3 - "${pins[*]}" "${wheel_files[@]}" <<'PY' || exit 1
import sys, zipfile
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.version import Version
pins = dict(p.split("==") for p in sys.argv[1].split())
bad = []
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(name).decode("utf-8").splitlines()
    who = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("Name:"))
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        name = req.name.lower().replace("_", "-")
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("cuda", "cudnn")):
            continue
        if name not in pins:
            if name.startswith(("nvidia-", "tensorrt")):
                bad.append(f"{who} needs {req}, which is not pinned")
            continue
        if not req.specifier.contains(Version(pins[name]), prereleases=True):
            bad.append(f"{who} needs {req}, pinned {name}=={pins[name]}")
if bad:
    print("get_onnxruntime: the pinned versions do not fit together:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"get_onnxruntime: pins checked against the requirements of {len(sys.argv) - 2} wheels")
PY
    # Only the libraries the providers use (no cuBLAS for Fortran, no cuFFTW,
    # no alternative NVRTC), under the wheels' own layout so that their
    # RUNPATHs ($ORIGIN/../../cu13/lib) hold.
    rm -rf "$tmp/nvidia"
    mkdir -p "$tmp/nvidia"
    for pin in "${pins[@]}"; do
        python3 - "$(wheel_of "$pin")" "$tmp/nvidia" <<'PY'
import re, sys, zipfile
wanted = re.compile(r"^(nvidia/(cu13/lib|cudnn/lib)/|tensorrt_libs/)lib(?!nvblas|cufftw|nvrtc\.alt|nvrtc-builtins\.alt)[^/]*\.so[.0-9]*$")
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        if wanted.match(info.filename):
            out = info.filename.removeprefix("nvidia/")
            info.filename = out
            z.extract(info, sys.argv[2])
PY
    done
fi
mkdir -p "$dest"
# A different build may be there: remove its libraries (only those) so no
# stale provider library is picked up beside the new runtime.
rm -rf "$dest"/libonnxruntime*.so* "$dest"/libopenvino*.so* "$dest"/libtbb*.so* "$dest/.package" "$dest/nvidia"
[ "$build" = gpu ] && mv "$tmp/nvidia" "$dest/nvidia"
cp "$capi/libonnxruntime.so.$version" "$dest/"
# Provider libraries (CUDA, TensorRT, OpenVINO) are separate files that ONNX
# Runtime looks for beside itself.
for p in "$capi"/libonnxruntime_providers_*.so; do
    [ -e "$p" ] && cp "$p" "$dest/"
done
if [ "$build" = openvino ]; then
    # OpenVINO itself, its ONNX reader, the CPU plugin and TBB, under the
    # names they link to each other by (the GPU and NPU plugins are left out:
    # the element runs OpenVINO on the CPU only).
    for p in libopenvino.so.[0-9][0-9][0-9][0-9] libopenvino_onnx_frontend.so.[0-9][0-9][0-9][0-9] \
             libopenvino_intel_cpu_plugin.so libopenvino_auto_plugin.so libopenvino_hetero_plugin.so \
             libtbb.so.12 libtbbmalloc.so; do
        for f in "$capi"/$p; do
            [ -e "$f" ] && cp "$f" "$dest/"
        done
    done
fi
ln -sf "libonnxruntime.so.$version" "$dest/libonnxruntime.so"
ln -sf "libonnxruntime.so.$version" "$dest/libonnxruntime.so.1"
echo "$manifest" > "$dest/.package"
echo "get_onnxruntime: installed $(ls "$dest" | tr '\n' ' ')in $dest"
if [ "$build" = gpu ]; then
    echo "get_onnxruntime: downloaded $(du -shcL $(for p in "$package==$version" "${pins[@]}"; do wheel_of "$p"; done) | tail -1 | cut -f1) of wheels, installed $(du -sh "$dest" | cut -f1), in $((SECONDS - started)) s"
    echo "get_onnxruntime: the NVIDIA driver (libcuda.so.1, 580 or newer) is the one piece this does not install; gst-dreamsim doctor says what runs"
fi
