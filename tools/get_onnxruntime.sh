#!/usr/bin/env bash
# Installs the ONNX Runtime library that the dreamsim element loads at run
# time, from a wheel on PyPI (no build, no root needed):
#   $DEST/libonnxruntime.so -> libonnxruntime.so.<version>
# DEST defaults to ${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime,
# one of the places the element searches by default. Running it again when
# the same build is already there does nothing.
#
# Usage: tools/get_onnxruntime.sh [--build auto|cpu|openvino|gpu] [--version V] [--dest DIR]
#   --build cpu       onnxruntime 1.31.1: the CPU provider, fp32.
#   --build openvino  onnxruntime-openvino 1.24.1: the CPU provider plus
#                     OpenVINO, which computes in bf16 on processors with
#                     bf16 matrix units (AMX, AVX512-BF16): the element's
#                     fast CPU path (README, "Throughput").
#   --build gpu       onnxruntime-gpu 1.31.1 (CUDA 13 + cuDNN 9; TensorRT 10
#                     for the tensorrt provider) with its provider libraries.
#   --build auto      (default) openvino where /proc/cpuinfo shows amx_bf16 or
#                     avx512_bf16, cpu otherwise.
#   --gpu             the same as --build gpu (older spelling).
set -euo pipefail

build=auto
version=
dest="${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime"
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        --dest) dest="$2"; shift 2 ;;
        --gpu) build=gpu; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

lib="$dest/libonnxruntime.so.$version"
if [ -f "$lib" ] && [ -L "$dest/libonnxruntime.so" ] && [ -f "$dest/.package" ] \
    && [ "$(cat "$dest/.package")" = "$package==$version" ]; then
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
echo "get_onnxruntime: downloading $package==$version ($platform) from PyPI"
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform "$platform" "$package==$version" -d "$tmp"; then
    echo "get_onnxruntime: download failed (offline, or no such version?). Set ORT_DYLIB_PATH to an existing libonnxruntime.so instead." >&2
    exit 1
fi
python3 -m zipfile -e "$tmp"/*.whl "$tmp/x"
capi="$tmp/x/onnxruntime/capi"
mkdir -p "$dest"
# A different build may be there: remove its libraries (only those) so no
# stale provider library is picked up beside the new runtime.
rm -f "$dest"/libonnxruntime*.so* "$dest"/libopenvino*.so* "$dest"/libtbb*.so* "$dest/.package"
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
echo "$package==$version" > "$dest/.package"
echo "get_onnxruntime: installed $(ls "$dest" | tr '\n' ' ')in $dest"
