#!/usr/bin/env bash
# Clips for measuring dreamsim's change test (docs/throughput.md): made from
# bikes.mp4's frame 100 (640x272), encoded with GStreamer (VP8 in WebM,
# 25 frames/s, 2 Mbit/s):
#   static.webm  the frame held, with +-2 levels of noise per pixel (8 noisy
#                copies in a random order: a camera on a still scene)
#   fade.webm    the frame fading linearly to black
#   pan.webm     a 480x240 window moving 1 pixel a frame across the frame
#                (back and forth)
#
#   tools/make_change_clips.sh OUTDIR [SECONDS]     (default 10 s)
#
# Needs gst-launch-1.0 (vp8enc, webmmux, rawvideoparse) and python3; reads
# .cache/media/bikes.mp4 (tools/fetch_test_media.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: tools/make_change_clips.sh OUTDIR [SECONDS]}"
seconds="${2:-10}"
case "$seconds" in '' | *[!0-9]* | 0) echo "make_change_clips: SECONDS must be a whole number >= 1" >&2; exit 2 ;; esac
bikes="$root/.cache/media/bikes.mp4"
[ -f "$bikes" ] || { echo "make_change_clips: $bikes is missing: run tools/fetch_test_media.sh" >&2; exit 1; }
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

gst-launch-1.0 -q filesrc location="$bikes" ! decodebin ! videoconvert ! video/x-raw,format=RGB \
    ! filesink location="$tmp/bikes.rgb"

python3 - "$tmp" "$seconds" <<'PY'
import random, sys
tmp, seconds = sys.argv[1], int(sys.argv[2])
W, H, N = 640, 272, 25 * seconds
size = W * H * 3
with open(f"{tmp}/bikes.rgb", "rb") as f:
    f.seek(100 * size)
    still = f.read(size)
assert len(still) == size, "bikes.mp4 has fewer than 101 frames"
rng = random.Random(1)
# +-2 levels of noise: 8 noisy copies of the frame, shown in a random order.
noisy = [bytes(min(255, max(0, v + rng.randrange(5) - 2)) for v in still) for _ in range(8)]
with open(f"{tmp}/static.rgb", "wb") as f:
    for i in range(N):
        f.write(noisy[rng.randrange(8)])
with open(f"{tmp}/fade.rgb", "wb") as f:
    for i in range(N):
        k = 1 - i / max(1, N - 1)
        f.write(still.translate(bytes(round(v * k) for v in range(256))))
PW, PH = 480, 240
with open(f"{tmp}/pan.rgb", "wb") as f:
    span = W - PW
    for i in range(N):
        dx = i % (2 * span)
        dx = dx if dx <= span else 2 * span - dx
        for y in range(PH):
            row = (y + 16) * W * 3
            f.write(still[row + dx * 3: row + (dx + PW) * 3])
PY

encode() { # name width height
    gst-launch-1.0 -q filesrc location="$tmp/$1.rgb" \
        ! rawvideoparse format=rgb width="$2" height="$3" framerate=25/1 \
        ! videoconvert ! vp8enc deadline=1 target-bitrate=2000000 ! webmmux \
        ! filesink location="$out/$1.webm"
    echo "$out/$1.webm"
}
encode static 640 272
encode fade 640 272
encode pan 480 240
