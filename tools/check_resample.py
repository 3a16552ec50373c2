#!/usr/bin/env python3
"""Golden check: the Rust resampler in src/preprocess/resample.rs against the installed Pillow.

DreamSim's reference preprocessing is ``PIL.Image.resize(size, Image.BICUBIC)`` on an RGB
image, and the Rust engine must reproduce it byte for byte. This script draws many random
cases (sizes from 1x1 to 2000x1200, extreme aspect ratios, upscales, downscales, identity
axes, padded row strides, noise, hard 0/255 edges, gradients), resizes each with Pillow, and
compares with a small Rust checker binary that compiles resample.rs on its own (no other
crate code, no dependencies).

Usage (needs cargo; the checker is built under the temp dir, see --build-dir):
    python3 tools/check_resample.py                      # builds the checker, 500 cases
    python3 tools/check_resample.py --cases 2000 --seed 7
    python3 tools/check_resample.py --checker /path/to/resample_checker

The checker reads requests on stdin and answers on stdout, so no per-case files are written;
cases that mismatch are saved (input, expected, actual, sizes) under --failures-dir so they
can be replayed. Exit status: 0 when every case is identical, 1 otherwise.

Which pass runs first when both dimensions change depends on the Pillow release (always the
horizontal one up to 12.1; python-pillow/Pillow#9524 in 12.2 and 12.3; #9549 from 13.0);
``--pass-order auto`` picks the rule of the installed Pillow. To check an older rule, put that
Pillow first on the path, e.g. ``pip install --target /tmp/pillow12 pillow==12.3.0`` and
``PYTHONPATH=/tmp/pillow12 python3 tools/check_resample.py``.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
RESAMPLE_RS = REPO / "src" / "preprocess" / "resample.rs"

CARGO_TOML = """\
[package]
name = "resample_checker"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]

[workspace]

[profile.release]
debug-assertions = true
overflow-checks = true
"""

# Protocol, all integers u32 little endian. Request: in_w, in_h, src_stride, out_w, out_h,
# order (0 = Pillow 13, 1 = horizontal first, 2 = Pillow 12.2), then
# (in_h - 1) * src_stride + in_w * 3 bytes (the last row unpadded, the tightest buffer `run`
# accepts). in_w == 0 ends the session.
# Reply: out_w * out_h * 3 bytes. The checker runs every case twice through the same plan and
# one long-lived scratch buffer and fails loudly if the runs differ, which also covers reuse.
MAIN_RS = """\
#![allow(dead_code)]
use std::io::{{Read, Write}};

#[path = {path}]
mod resample;

use resample::{{PassOrder, ResizePlan}};

fn read_u32(input: &mut impl Read) -> u32 {{
    let mut b = [0u8; 4];
    input.read_exact(&mut b).expect("checker: truncated request");
    u32::from_le_bytes(b)
}}

fn main() {{
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut input = std::io::BufReader::new(stdin.lock());
    let mut output = std::io::BufWriter::new(stdout.lock());
    let mut scratch = Vec::new();
    let mut src = Vec::new();
    loop {{
        let in_w = read_u32(&mut input) as usize;
        if in_w == 0 {{
            break;
        }}
        let in_h = read_u32(&mut input) as usize;
        let stride = read_u32(&mut input) as usize;
        let out_w = read_u32(&mut input) as usize;
        let out_h = read_u32(&mut input) as usize;
        let order = match read_u32(&mut input) {{
            0 => PassOrder::Pillow13,
            1 => PassOrder::HorizontalFirst,
            2 => PassOrder::Pillow12_2,
            other => panic!("checker: unknown pass order {{other}}"),
        }};
        src.resize((in_h - 1) * stride + in_w * 3, 0);
        input.read_exact(&mut src).expect("checker: truncated image");
        let plan = ResizePlan::with_pass_order(in_w, in_h, out_w, out_h, order);
        let mut dst = vec![0u8; out_w * out_h * 3];
        plan.run(&src, stride, &mut dst, &mut scratch);
        let mut again = vec![0x5Au8; out_w * out_h * 3];
        plan.run(&src, stride, &mut again, &mut scratch);
        assert!(dst == again, "checker: second run through the same plan and scratch differs");
        output.write_all(&dst).unwrap();
        output.flush().unwrap();
    }}
}}
"""


def build_checker(build_dir: Path, source: Path) -> Path:
    """Writes the scratch cargo project around `source` and builds it; returns the binary."""
    (build_dir / "src").mkdir(parents=True, exist_ok=True)
    (build_dir / "Cargo.toml").write_text(CARGO_TOML)
    main_rs = MAIN_RS.format(path=json.dumps(str(source.resolve())))
    (build_dir / "src" / "main.rs").write_text(main_rs)
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--offline"],
        cwd=build_dir,
        check=True,
    )
    return build_dir / "target" / "release" / "resample_checker"


class Checker:
    """One long-lived checker process."""

    def __init__(self, binary: Path):
        self.proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def resize(self, padded: bytes, in_w, in_h, stride, out_w, out_h, order) -> bytes:
        header = struct.pack("<6I", in_w, in_h, stride, out_w, out_h, order)
        self.proc.stdin.write(header)
        self.proc.stdin.write(padded)
        self.proc.stdin.flush()
        n = out_w * out_h * 3
        out = self.proc.stdout.read(n)
        if out is None or len(out) != n:
            raise RuntimeError(
                f"checker died on {in_w}x{in_h} -> {out_w}x{out_h} (exit {self.proc.poll()})"
            )
        return out

    def close(self):
        try:
            self.proc.stdin.write(struct.pack("<I", 0))
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait()


# ---------------------------------------------------------------- case generation


def random_size(rng: np.random.Generator) -> tuple[int, int]:
    kind = rng.random()
    if kind < 0.25:
        return int(rng.integers(1, 65)), int(rng.integers(1, 65))
    if kind < 0.80:
        return int(rng.integers(1, 2001)), int(rng.integers(1, 1201))
    extreme = [(4000, 3), (3, 4000), (4000, 1), (1, 4000), (2000, 2), (2, 1200), (1, 1)]
    w, h = extreme[int(rng.integers(len(extreme)))]
    # jitter the long side so the exact scale varies between draws
    if w > h:
        w -= int(rng.integers(0, 50))
    elif h > w:
        h -= int(rng.integers(0, 50))
    return w, h


def random_output(rng: np.random.Generator, w: int, h: int) -> tuple[int, int]:
    kind = rng.random()
    if kind < 0.45:
        return 224, 224
    if kind < 0.55:  # one axis unchanged: single-pass paths
        if rng.random() < 0.5:
            return w, int(rng.integers(1, 600))
        return int(rng.integers(1, 600)), h
    if kind < 0.65:  # upscale
        return (
            int(rng.integers(w, max(w + 1, min(2 * w + 3, 2400)))),
            int(rng.integers(h, max(h + 1, min(2 * h + 3, 1400)))),
        )
    if kind < 0.70:  # near-tie of the Pillow 13 pass-order rule: 2 * dx - dy in {-1, 0, 1}
        ow = int(rng.integers(1, w + 1))
        dy = 2 * (w - ow) + int(rng.integers(-1, 2))
        oh = h - dy
        if 1 <= oh:
            return ow, oh
    return int(rng.integers(1, 1000)), int(rng.integers(1, 1000))


def random_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    kind = int(rng.integers(6))
    if kind == 0:  # uniform noise
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == 1:  # hard 0/255 per-pixel noise: maximal overshoot, exercises clipping
        return (rng.random((h, w, 3)) < 0.5).astype(np.uint8) * 255
    if kind == 2:  # sharp-edged blocks of random size and colour
        bs = int(rng.integers(1, 40))
        yy, xx = np.mgrid[0:h, 0:w]
        cells = ((yy // bs) * 7919 + (xx // bs) * 104729) % 256
        lut = (rng.random((256, 3)) < 0.5).astype(np.uint8) * 255
        return lut[cells]
    if kind == 3:  # stripes alternating 0 and 255 (checkerboard along one or both axes)
        yy, xx = np.mgrid[0:h, 0:w]
        px, py = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        a = (((xx // px) + (yy // py) * int(rng.integers(0, 2))) % 2).astype(np.uint8) * 255
        return np.repeat(a[:, :, None], 3, axis=2)
    if kind == 4:  # smooth gradients plus a little noise
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack(
            [xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], axis=2
        )
        return np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    # mixture: noise with saturated rectangles
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        rh, rw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        a[y0 : y0 + rh, x0 : x0 + rw] = rng.choice([0, 255])
    return a


FIXED_CASES = [
    (1920, 1080, 224, 224),  # 1080p video, the production case
    (3840, 2160, 224, 224),  # 4K video
    (1280, 720, 224, 224),
    (1080, 1920, 224, 224),  # portrait: horizontal first (1696 <= 2 * 856)
    (720, 1280, 224, 224),  # portrait: vertical first under Pillow 13 (1056 > 2 * 496)
    (640, 480, 224, 224),
    (4000, 3, 224, 224),
    (3, 4000, 224, 224),
    (1, 1, 224, 224),
    (224, 224, 224, 224),  # identity: copy
    (224, 225, 224, 224),
    (225, 224, 224, 224),
    (1, 4000, 1, 1),
    (4000, 1, 1, 1),
    (2000, 1200, 1, 1),
    (7, 5, 11, 2),
    (1000, 1000, 998, 996),  # pass-order tie: 2 * dx == dy
    (1000, 1000, 998, 995),  # just past the tie
    (3, 300, 224, 224),  # Pillow 12.2/12.3 rule: exactly 100x taller, horizontal first
    (3, 301, 224, 224),  # just over 100x: vertical first there
    (3, 301, 224, 302),  # taller output: horizontal first there
]


def pad_rows(a: np.ndarray, extra: int, rng: np.random.Generator) -> tuple[bytes, int]:
    """Rows of `a` with `extra` garbage bytes between them (none after the last)."""
    h, w, _ = a.shape
    stride = w * 3 + extra
    if extra == 0:
        return a.tobytes(), stride
    buf = rng.integers(0, 256, h * stride, dtype=np.uint8).reshape(h, stride)
    buf[:, : w * 3] = a.reshape(h, w * 3)
    return buf.tobytes()[: (h - 1) * stride + w * 3], stride


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    tmp = Path(tempfile.gettempdir())
    ap.add_argument("--checker", type=Path, help="prebuilt checker binary (default: build it)")
    ap.add_argument(
        "--source", type=Path, default=RESAMPLE_RS, help="resample.rs to build the checker from"
    )
    ap.add_argument("--build-dir", type=Path, default=tmp / "dreamsim_resample_checker")
    ap.add_argument("--cases", type=int, default=500, help="random cases after the fixed ones")
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument(
        "--pass-order",
        choices=["auto", "pillow13", "pillow12.2", "horizontal-first"],
        default="auto",
        help="auto: from the installed Pillow (>= 13.0, 12.2-12.3, older)",
    )
    ap.add_argument("--failures-dir", type=Path, default=tmp / "resample_failures")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    version = tuple(int(v) for v in PIL.__version__.split(".")[:2])
    order_name = args.pass_order
    if order_name == "auto":
        if version >= (13, 0):
            order_name = "pillow13"
        elif version >= (12, 2):
            order_name = "pillow12.2"
        else:
            order_name = "horizontal-first"
    order = {"pillow13": 0, "horizontal-first": 1, "pillow12.2": 2}[order_name]

    binary = args.checker or build_checker(args.build_dir, args.source)
    print(
        f"Pillow {PIL.__version__}, numpy {np.__version__}, pass order {order_name}, "
        f"checker {binary}"
    )

    rng = np.random.default_rng(args.seed)
    cases = list(FIXED_CASES)
    for _ in range(args.cases):
        w, h = random_size(rng)
        cases.append((w, h, *random_output(rng, w, h)))

    checker = Checker(binary)
    mismatches = 0
    pixels = 0
    t0 = time.time()
    try:
        for i, (w, h, ow, oh) in enumerate(cases):
            a = random_image(rng, w, h)
            extra = 0 if rng.random() < 0.5 else int(rng.integers(1, 17))
            padded, stride = pad_rows(a, extra, rng)
            expected = Image.fromarray(a, "RGB").resize((ow, oh), Image.BICUBIC).tobytes()
            actual = checker.resize(padded, w, h, stride, ow, oh, order)
            pixels += ow * oh
            if actual != expected:
                mismatches += 1
                e = np.frombuffer(expected, np.uint8)
                d = np.frombuffer(actual, np.uint8)
                diff = np.abs(e.astype(int) - d.astype(int))
                print(
                    f"MISMATCH case {i}: {w}x{h} (stride {stride}) -> {ow}x{oh}: "
                    f"{int((diff > 0).sum())} of {diff.size} bytes differ, max {int(diff.max())}"
                )
                out = args.failures_dir / f"case_{i:05d}"
                out.mkdir(parents=True, exist_ok=True)
                (out / "input.rgb").write_bytes(a.tobytes())
                (out / "expected.rgb").write_bytes(expected)
                (out / "actual.rgb").write_bytes(actual)
                (out / "case.json").write_text(
                    json.dumps(
                        {"in": [w, h], "out": [ow, oh], "stride": stride, "pass_order": order_name}
                    )
                )
            elif args.verbose:
                print(f"ok {i}: {w}x{h} -> {ow}x{oh}")
    finally:
        checker.close()

    print(
        f"{len(cases)} cases ({len(FIXED_CASES)} fixed + {args.cases} random, seed {args.seed}), "
        f"{pixels} output pixels, {mismatches} mismatching, {time.time() - t0:.1f} s"
    )
    if mismatches:
        print(f"failing cases saved under {args.failures_dir}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
