#!/usr/bin/env bash
# Installs the ONNX Runtime CPU library that the dreamsim element loads at run
# time, from the onnxruntime wheel on PyPI (no build, no root needed):
#   $DEST/libonnxruntime.so -> libonnxruntime.so.<version>
# DEST defaults to ${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime,
# one of the places the element searches by default. Running it again when
# the library is already there does nothing.
#
# Usage: tools/get_onnxruntime.sh [--version 1.31.1] [--dest DIR] [--gpu]
#   --gpu  takes onnxruntime-gpu instead (CUDA 13 + cuDNN 9; TensorRT 10 for
#          the tensorrt provider) and installs its provider libraries too.
set -euo pipefail

version=1.31.1
dest="${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/onnxruntime"
package=onnxruntime
while [ $# -gt 0 ]; do
    case "$1" in
        --version) version="$2"; shift 2 ;;
        --dest) dest="$2"; shift 2 ;;
        --gpu) package=onnxruntime-gpu; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "get_onnxruntime: unknown option $1" >&2; exit 2 ;;
    esac
done

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
cp "$capi/libonnxruntime.so.$version" "$dest/"
# The GPU wheel's CUDA and TensorRT providers are separate libraries that
# ONNX Runtime looks for beside itself.
for p in "$capi"/libonnxruntime_providers_*.so; do
    [ -e "$p" ] && cp "$p" "$dest/"
done
ln -sf "libonnxruntime.so.$version" "$dest/libonnxruntime.so"
ln -sf "libonnxruntime.so.$version" "$dest/libonnxruntime.so.1"
echo "$package==$version" > "$dest/.package"
echo "get_onnxruntime: installed $(ls "$dest" | tr '\n' ' ')in $dest"
