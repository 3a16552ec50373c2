#!/usr/bin/env bash
# The element and the reference package, side by side in one run (issue #6):
# the element's benchmark (gst-dreamsim bench, cli/src/bench.rs) and then tools/reference_bench.py
# (the reference `dreamsim` package, PyTorch fp32 on the CPU) on the same video,
# the same first N decoded frames, the same number of threads and the same
# batch size, one after the other; then a summary table.
#
#   tools/bench_side_by_side.sh VIDEO --model MODEL.onnx --cache-dir CHECKPOINTS
#       [--type TYPE] [--threads N] [--batch-size B] [--frames N]
#       [--provider P] [--full-precision] [--out-dir DIR] [--no-build]
#
# --type        the reference's dreamsim_type (default: MODEL's dreamsim.type
#               metadata). MODEL must be exported from CHECKPOINTS
#               (tools/export_onnx.py) for the two to compute the same thing.
# --threads     element `threads` (ONNX Runtime intra-op) and PyTorch threads
#               (default: the number of CPUs).
# --batch-size  element `batch-size` and frames per model.embed call (default 8).
# --frames      only the first N decoded frames, on both sides (default: all).
# --provider, --full-precision
#               passed to the element's benchmark; default: the element's own
#               defaults (provider auto: on a machine with a GPU that is the GPU,
#               or OpenVINO bf16 on a CPU with AMX, while the reference runs fp32
#               on the CPU: give --provider cpu for fp32 CPU against fp32 CPU).
# --out-dir     where the logs, the reference's JSON and its distances (CSV)
#               go (default: a new directory under /tmp, kept).
# --no-build    do not run cargo build (use target/release/gst-dreamsim).
#
# What each side's figures cover (details in cli/src/bench.rs and in
# tools/reference_bench.py's docstring):
# - element: the whole pipeline `filesrc ! decodebin ! videoconvert ! dreamsim
#   ! fakesink` (decode overlaps inference); its wall time includes the model
#   load (the element loads it when the pipeline starts: it is in `other`);
#   decode ms/frame comes from a separate decode-only pass.
# - reference: decode (gst-launch-1.0 to a raw RGB file), then Pillow
#   preprocessing, model.embed and distances, one after the other; the model
#   load is timed on its own and excluded from frames/s (the "with model load"
#   row counts it, as the element does).
# Distances: the element's benchmark does not write them, so their agreement is
# not computed here; the script prints the tools/parity.py command that checks it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
die() { echo "bench_side_by_side: $*" >&2; exit 2; }
say() { printf '\n[bench_side_by_side] %s\n' "$*"; }
quote() { local s; s="$(printf '%q ' "$@")"; printf '%s' "${s% }"; }
show() { printf '+ %s\n' "$(quote "$@")"; }

video="" model="" type="" cache_dir="" frames="" out_dir="" provider=""
threads="$(nproc)" batch=8 build=1 full_precision=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="${2:?}"; shift 2 ;;
        --type) type="${2:?}"; shift 2 ;;
        --cache-dir) cache_dir="${2:?}"; shift 2 ;;
        --threads) threads="${2:?}"; shift 2 ;;
        --batch-size) batch="${2:?}"; shift 2 ;;
        --frames) frames="${2:?}"; shift 2 ;;
        --provider) provider="${2:?}"; shift 2 ;;
        --full-precision) full_precision=1; shift ;;
        --out-dir) out_dir="${2:?}"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        -*) die "unknown option $1 (--help lists them)" ;;
        *) [ -z "$video" ] || die "more than one VIDEO: $video, $1"; video="$1"; shift ;;
    esac
done
if [ -z "$video" ] || [ -z "$model" ] || [ -z "$cache_dir" ]; then usage 2; fi
[ -f "$video" ] || die "video $video does not exist"
[ -f "$model" ] || die "model $model does not exist"
[ -d "$cache_dir" ] || die "checkpoint cache $cache_dir does not exist"
for v in "$threads" "$batch" ${frames:+"$frames"}; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "--threads, --batch-size and --frames take a positive integer, not $v"
done
python="${PYTHON:-$root/tools/.venv/bin/python}"
[ -x "$python" ] || die "$python not found: the reference package's venv (tools/install_deps.sh), or set PYTHON"

if [ -z "$type" ]; then
    type="$("$python" -c 'import sys; sys.path.insert(0, "tools"); from parity import onnx_metadata
print(onnx_metadata(sys.argv[1]).get("dreamsim.type", ""))' "$model")"
    [ -n "$type" ] || die "$model has no dreamsim.type metadata: give --type"
fi
if [ -z "$out_dir" ]; then
    out_dir="$(mktemp -d /tmp/dreamsim-side-by-side.XXXXXX)"
else
    mkdir -p "$out_dir"
fi

bench="$root/target/release/gst-dreamsim"
build_cmd=(cargo build --release -p gst-dreamsim)
if [ "$build" = 1 ]; then
    say "building the element's benchmark (release)"
    show "${build_cmd[@]}"
    "${build_cmd[@]}"
fi
[ -x "$bench" ] || die "$bench not found (run without --no-build)"
if [ -n "$frames" ] && ! { "$bench" bench --help 2>&1 || true; } | grep -q -- '--frames'; then
    die "this build of the benchmark has no --frames option (rebuild, or leave --frames out)"
fi

element_cmd=("$bench" bench "$video" --model "$model" --threads "$threads" --batch-size "$batch")
[ -z "$frames" ] || element_cmd+=(--frames "$frames")
[ -z "$provider" ] || element_cmd+=(--provider "$provider")
[ "$full_precision" = 0 ] || element_cmd+=(--full-precision)
reference_cmd=("$python" "$root/tools/reference_bench.py" "$video" --type "$type" --cache-dir "$cache_dir"
               --threads "$threads" --batch-size "$batch")
[ -z "$frames" ] || reference_cmd+=(--frames "$frames")
reference_cmd+=(--json "$out_dir/reference.json" --csv "$out_dir/reference-distances.csv")

cpu_name="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)"
machine="${cpu_name:-unknown CPU}, $(nproc) CPUs"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

say "element: gst-dreamsim bench (load average before: $load_before)"
show "${element_cmd[@]}"
"${element_cmd[@]}" 2>&1 | tee "$out_dir/element.txt"

load_between="$(cut -d' ' -f1-3 /proc/loadavg)"
say "reference: tools/reference_bench.py (load average before: $load_between)"
show "${reference_cmd[@]}"
"${reference_cmd[@]}" 2>&1 | tee "$out_dir/reference.txt"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

say "summary"
"$python" - "$out_dir/element.txt" "$out_dir/reference.json" "$model" "$threads" "$batch" <<'EOF'
import json, os, re, sys

text, ref = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
model, threads, batch = sys.argv[3:6]


def find(pattern, cast=float):
    m = re.search(pattern, text, re.M)
    return tuple(cast(g) for g in m.groups()) if m else None


head = re.search(r'^(.*) on (.*?) in (.*?):$', text, re.M)
run = find(r'^\s+(\d+) frames in ([\d.]+) s after a ([\d.]+) s model load: ([\d.]+) frames/s \(model ran on (\d+) frames, (\d+) batches\)')
per = find(r'^\s+per frame: decode ([\d.]+) ms.*?, preprocess ([\d.]+) ms, inference ([\d.]+) ms, other ([\d.]+) ms')
cpu = find(r'^\s+CPU ([\d.]+) s = ([\d.]+) cores busy')
peak = find(r'^peak resident memory of the process: (\d+) MiB')
if not (head and run and per and cpu and peak):
    print('WARNING: could not read every figure from the element benchmark\'s output (its format changed?): '
          'missing figures show as ?')
q = lambda v, fmt: '?' if v is None else format(v, fmt)  # noqa: E731
e_frames, e_wall, e_load, e_fps = run[:4] if run else (None, None, None, None)
e_fps_load = e_frames / (e_wall + e_load) if run else None
rows = [
    ('engine', f'ONNX Runtime, {head.group(2)}, {head.group(3)}' if head else '?',
     f'PyTorch {ref["torch"]}, cpu, fp32'),
    ('model', os.path.basename(model), f'dreamsim {ref["type"]} (0.2.1){", random weights" if ref["random_weights"] else ""}'),
    ('threads / batch size', f'{threads} / {batch}', f'{ref["threads"]} (interop {ref["interop_threads"]}) / {ref["batch_size"]}'),
    ('frames', q(e_frames, '.0f') + (f' ({run[5]:.0f} batches)' if run else ''),
     f'{ref["frames"]} ({ref["batches"]} batches)'),
    ('model load, s', q(e_load, '.2f'), f'{ref["load_s"]:.2f}'),
    ('wall time, s (model load excluded)', q(e_wall, '.2f'), f'{ref["wall_s"]:.2f}'),
    ('frames/s (model load excluded)', q(e_fps, '.3f'), f'{ref["frames_per_s"]:.3f}'),
    ('frames/s, model load counted', q(e_fps_load, '.3f'), f'{ref["frames_per_s_with_load"]:.3f}'),
    ('ms/frame decode', q(per and per[0], '.1f') + ' (separate pass)', f'{ref["decode_ms_per_frame"]:.1f} (in the run)'),
    ('ms/frame preprocess', q(per and per[1], '.1f'), f'{ref["preprocess_ms_per_frame"]:.1f}'),
    ('ms/frame inference', q(per and per[2], '.1f'), f'{ref["inference_ms_per_frame"]:.1f}'),
    ('ms/frame other', q(per and per[3], '.1f'), f'{ref["other_ms_per_frame"]:.1f}'),
    ('CPU cores busy', q(cpu and cpu[1], '.2f'), f'{ref["cores_busy"]:.2f}'),
    ('peak memory, MiB', q(peak and peak[0], '.0f'),
     f'{ref["peak_rss_mib"]:.0f} (+ decode process {ref["peak_rss_decode_mib"]:.0f})'),
]
w0 = max(len(r[0]) for r in rows)
w1 = max(len(r[1]) for r in rows + [('', 'element (gst-dreamsim bench)')])
print(f'| {"":<{w0}} | {"element (gst-dreamsim bench)":<{w1}} | reference (tools/reference_bench.py) |')
print(f'|{"-" * (w0 + 2)}|{"-" * (w1 + 2)}|{"-" * 38}|')
for r in rows:
    print(f'| {r[0]:<{w0}} | {r[1]:<{w1}} | {r[2]} |')
if e_fps:
    print(f'element / reference, frames/s: {e_fps / ref["frames_per_s"]:.2f}x with the model load left out on both '
          f'sides; {e_fps_load / ref["frames_per_s_with_load"]:.2f}x with it counted on both')
if e_frames is not None and int(e_frames) != ref['frames']:
    print(f'WARNING: the element ran on {int(e_frames)} frames, the reference on {ref["frames"]}')
EOF
echo "machine: $machine; load average before the element: $load_before, before the reference: $load_between, after: $load_after"
echo "distances: not compared here (the element's benchmark does not write them); the parity check on the same frames:"
parity_cmd=("$python" tools/parity.py "$video" --model "$model" --type "$type" --cache-dir "$cache_dir"
            --threads "$threads" --batch-size "$batch")
[ -z "$frames" ] || parity_cmd+=(--frames "$frames")
echo "  $(quote "${parity_cmd[@]}")   # from $root"
echo "commands run:"
echo "  cd $(quote "$root")"
[ "$build" = 0 ] || echo "  $(quote "${build_cmd[@]}")"
echo "  $(quote "${element_cmd[@]}")"
echo "  $(quote "${reference_cmd[@]}")"
echo "logs, reference JSON and distances: $out_dir"
