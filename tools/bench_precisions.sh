#!/usr/bin/env bash
# fp32, int8, bf16 and the reference package side by side in one run (issue #15):
# for each model and batch size, on the same first N frames of VIDEO with the same threads,
#   - fp32 and int8: `gst-dreamsim bench --precision int8 --agreement` (one process, both runs,
#     and the agreement of int8's previous-frame distances with fp32's);
#   - bf16: the same with the onnxruntime-openvino build and --provider openvino (only where the
#     processor has bf16 units: elsewhere OpenVINO would emulate bf16);
#   - reference: tools/reference_bench.py (the dreamsim package, PyTorch fp32), with --cache-dir;
# then one table.
#
#   tools/bench_precisions.sh VIDEO --model MODEL.onnx [--model MODEL2.onnx ...]
#       [--frames N] [--threads N] [--batch-sizes 1,8] [--cache-dir CHECKPOINTS]
#       [--openvino LIB] [--out-dir DIR] [--no-build]
#
# --model       an fp32 model with its <type>-int8.onnx beside it (tools/get_model.sh --int8)
# --frames      the first N decoded frames (default 48)
# --threads     ONNX Runtime intra-op threads and PyTorch threads (default 2)
# --batch-sizes comma-separated (default 1,8)
# --cache-dir   the checkpoints the models were exported from: adds the reference package's row
#               (PYTHON, default tools/.venv/bin/python, must have the export environment)
# --openvino    libonnxruntime.so of the onnxruntime-openvino build
#               (default .cache/onnxruntime-openvino/libonnxruntime.so)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
die() { echo "bench_precisions: $*" >&2; exit 2; }
say() { printf '\n[bench_precisions] %s\n' "$*" >&2; }

video="" models=() frames=48 threads=2 batches="1,8" cache_dir="" out_dir="" build=1
openvino="$root/.cache/onnxruntime-openvino/libonnxruntime.so"
while [ $# -gt 0 ]; do
    case "$1" in
        --model) models+=("${2:?}"); shift 2 ;;
        --frames) frames="${2:?}"; shift 2 ;;
        --threads) threads="${2:?}"; shift 2 ;;
        --batch-sizes) batches="${2:?}"; shift 2 ;;
        --cache-dir) cache_dir="${2:?}"; shift 2 ;;
        --openvino) openvino="${2:?}"; shift 2 ;;
        --out-dir) out_dir="${2:?}"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage 0 ;;
        -*) die "unknown option $1 (--help lists them)" ;;
        *) [ -z "$video" ] || die "more than one VIDEO: $video, $1"; video="$1"; shift ;;
    esac
done
[ -n "$video" ] && [ ${#models[@]} -gt 0 ] || usage 2
[ -f "$video" ] || die "video $video does not exist"
for m in "${models[@]}"; do
    [ -f "$m" ] || die "model $m does not exist"
    int8="${m%.onnx}-int8.onnx"
    [ -f "$int8" ] || die "no int8 model beside $m ($int8): make one with tools/get_model.sh --int8"
done
out_dir="${out_dir:-$(mktemp -d /tmp/dreamsim-precisions.XXXXXX)}"
mkdir -p "$out_dir"

bench="$root/target/release/gst-dreamsim"
if [ "$build" = 1 ]; then
    say "building gst-dreamsim (release)"
    cargo build --release -p gst-dreamsim >&2
fi
[ -x "$bench" ] || die "$bench not found (run without --no-build)"
bf16=0
grep -qw avx512_bf16 /proc/cpuinfo && bf16=1
python="${PYTHON:-$root/tools/.venv/bin/python}"
if [ -n "$cache_dir" ] && [ ! -x "$python" ]; then
    die "--cache-dir needs the export environment's Python ($python; tools/get_model.sh --env-only, or set PYTHON)"
fi

results="$out_dir/results.tsv"
: >"$results"
for m in "${models[@]}"; do
    name="$(basename "${m%.onnx}")"
    for b in ${batches//,/ }; do
        common=("$video" --model "$m" --frames "$frames" --threads "$threads" --batch-size "$b" --quiet)
        log="$out_dir/$name-b$b-int8.txt"
        say "$name, batch $b: fp32 and int8 (load average $(cut -d' ' -f1 /proc/loadavg))"
        "$bench" bench "${common[@]}" --precision int8 --agreement >"$log" 2>&1 || die "failed: see $log"
        printf '%s\t%s\tint8\t%s\n' "$name" "$b" "$log" >>"$results"
        if [ "$bf16" = 1 ] && [ -f "$openvino" ]; then
            log="$out_dir/$name-b$b-bf16.txt"
            say "$name, batch $b: bf16 (OpenVINO)"
            "$bench" bench "${common[@]}" --provider openvino --onnxruntime "$openvino" --agreement \
                >"$log" 2>&1 || die "failed: see $log"
            printf '%s\t%s\tbf16\t%s\n' "$name" "$b" "$log" >>"$results"
        fi
        if [ -n "$cache_dir" ]; then
            type="$("$python" -c 'import sys; sys.path.insert(0, "tools"); from parity import onnx_metadata
print(onnx_metadata(sys.argv[1]).get("dreamsim.type", ""))' "$m")"
            json="$out_dir/$name-b$b-reference.json"
            say "$name, batch $b: the reference package"
            "$python" tools/reference_bench.py "$video" --type "$type" --cache-dir "$cache_dir" \
                --threads "$threads" --batch-size "$b" --frames "$frames" --json "$json" \
                >"$out_dir/$name-b$b-reference.txt" 2>&1 || die "failed: see $out_dir/$name-b$b-reference.txt"
            printf '%s\t%s\treference\t%s\n' "$name" "$b" "$json" >>"$results"
        fi
    done
done

cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
units="$(grep -o -w 'avx512_vnni\|avx512_bf16\|amx_bf16\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
python3 - "$results" "$frames" "$threads" <<'EOF'
import json, re, sys

rows, frames, threads = sys.argv[1], sys.argv[2], sys.argv[3]
run_re = re.compile(r'^(.*) on (\S+) in (\S+):\n\s+(\d+) frames in ([\d.]+) s after a ([\d.]+) s model load: '
                    r'([\d.]+) frames/s', re.M)
agree_re = re.compile(r'max \|delta\| (\S+), mean \|delta\| (\S+), Spearman (\S+)')
print(f'| model | batch | variant | frames/s | vs fp32 | Spearman vs fp32 | max abs delta | mean abs delta |')
print('|---|---|---|---|---|---|---|---|')
fp32 = {}
for line in open(rows):
    name, batch, kind, path = line.rstrip('\n').split('\t')
    if kind == 'reference':
        ref = json.load(open(path))
        base = fp32.get((name, batch))
        ratio = f'{ref["frames_per_s"] / base:.2f}x' if base else '?'
        print(f'| {name} | {batch} | reference package (PyTorch fp32) | {ref["frames_per_s"]:.2f} | {ratio} '
              f'| (parity: tools/parity.py) | | |')
        continue
    text = open(path).read()
    runs = run_re.findall(text)
    agree = agree_re.search(text)
    if len(runs) != 2 or not agree:
        print(f'| {name} | {batch} | {kind} | could not read {path} | | | | |')
        continue
    (_, prov, prec, *_, fps), (_, _, _, *_, fps32) = runs
    fps, fps32 = float(fps), float(fps32)
    if kind == 'int8':
        fp32[(name, batch)] = fps32
        print(f'| {name} | {batch} | fp32 (cpu) | {fps32:.2f} | 1.00x | 1 | 0 | 0 |')
    print(f'| {name} | {batch} | {prec} ({prov}) | {fps:.2f} | {fps / fps32:.2f}x (its own fp32 run: {fps32:.2f}) '
          f'| {agree.group(3)} | {agree.group(1)} | {agree.group(2)} |')
print(f'\n{frames} frames, threads {threads}; each variant\'s fp32 run is in the same process, right after it.')
EOF
echo "machine: $cpu; $units; $(nproc) CPUs; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs: $out_dir"
