#!/usr/bin/env python3
"""A model's skeleton: the graph and its small tensors, without the large weights.

An exported DreamSim ensemble with random weights is about 1 GB, too large to
carry to a test machine. Its skeleton keeps the graph, the metadata and every
initializer below a size threshold verbatim (LayerNorm weights and biases,
biases, class tokens, position embeddings, LoRA factors), and replaces each
large floating-point initializer by a record: name, dtype, shape, mean,
standard deviation and a seed derived from the name. `inflate` draws those
tensors again, deterministically, and writes an ordinary single-file ONNX
model with the original metadata_props. The same skeleton inflated on two
machines gives byte-identical files (compare the printed sha256).

Usage:
  model_skeleton.py strip MODEL.onnx OUT.skel.onnx [--threshold BYTES]
  model_skeleton.py inflate SKEL.onnx MODEL.onnx [--expect SHA256]
  model_skeleton.py check MODEL.onnx [--reference ORIGINAL.onnx]
      (needs onnxruntime: runs a few synthetic frames, checks that the
      embeddings are finite and that distances between different frames
      are neither all ~0 nor all equal)

Needs numpy and onnx only (strip, inflate). The draw: numpy's PCG64 seeded
with the first 8 bytes (little endian) of sha256(name), standard_normal in
float32, then `* float32(std) + float32(mean)` in float32, cast to the
tensor's dtype. The records live in the skeleton's metadata_props under
the key `skeleton.v1` (JSON); the large tensors keep their dtype and dims
with no data.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

KEY = "skeleton.v1"
DEFAULT_THRESHOLD = 1 << 20  # bytes

FLOAT_TYPES = {
    TensorProto.FLOAT: np.float32,
    TensorProto.FLOAT16: np.float16,
    TensorProto.DOUBLE: np.float64,
}


def seed_of(name):
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tensor_nbytes(t):
    if t.raw_data:
        return len(t.raw_data)
    n = 1
    for d in t.dims:
        n *= d
    return n * np.dtype(FLOAT_TYPES.get(t.data_type, np.float32)).itemsize


def strip(args):
    t0 = time.time()
    model = onnx.load(args.model, load_external_data=True)
    if any(p.key == KEY for p in model.metadata_props):
        sys.exit(f"model_skeleton: {args.model} is already a skeleton")
    records = []
    kept = dropped = 0
    for t in model.graph.initializer:
        if t.data_type not in FLOAT_TYPES or tensor_nbytes(t) < args.threshold:
            kept += tensor_nbytes(t)
            continue
        a = numpy_helper.to_array(t).astype(np.float64)
        records.append({
            "name": t.name,
            "dtype": TensorProto.DataType.Name(t.data_type),
            "dims": list(t.dims),
            "mean": float(a.mean()),
            "std": float(a.std()),
            "seed": seed_of(t.name),
        })
        dropped += a.size * np.dtype(FLOAT_TYPES[t.data_type]).itemsize
        for field in ("raw_data", "float_data", "double_data", "int32_data"):
            t.ClearField(field)
    big_constants = [
        n.name for n in model.graph.node if n.op_type == "Constant"
        for a in n.attribute if a.name == "value" and tensor_nbytes(a.t) >= args.threshold
    ]
    if big_constants:
        print(f"model_skeleton: note: {len(big_constants)} large Constant nodes kept verbatim", file=sys.stderr)
    meta = {
        "version": 1,
        "generator": "numpy PCG64(seed).standard_normal(float32) * std + mean, per tensor",
        "threshold": args.threshold,
        "source": os.path.basename(args.model),
        "source_sha256": sha256_file(args.model),
        "tensors": records,
    }
    p = model.metadata_props.add()
    p.key = KEY
    p.value = json.dumps(meta, separators=(",", ":"))
    onnx.save(model, args.out, save_as_external_data=False)
    print(f"model_skeleton: {len(records)} tensors ({dropped / 2**20:.1f} MiB) replaced by records, "
          f"{kept / 2**20:.2f} MiB of small tensors kept; {args.out}: "
          f"{os.path.getsize(args.out) / 2**20:.2f} MiB ({time.time() - t0:.1f} s)")


def draw(rec):
    n = 1
    for d in rec["dims"]:
        n *= d
    rng = np.random.Generator(np.random.PCG64(rec["seed"]))
    x = rng.standard_normal(n, dtype=np.float32)
    x *= np.float32(rec["std"])
    x += np.float32(rec["mean"])
    dtype = FLOAT_TYPES[TensorProto.DataType.Value(rec["dtype"])]
    return x.astype(dtype, copy=False).astype("<" + np.dtype(dtype).str[1:], copy=False)


def inflate(args):
    t0 = time.time()
    model = onnx.load(args.skeleton, load_external_data=False)
    props = [p for p in model.metadata_props if p.key == KEY]
    if not props:
        sys.exit(f"model_skeleton: {args.skeleton} has no {KEY} record: not a skeleton")
    meta = json.loads(props[0].value)
    if meta.get("version") != 1:
        sys.exit(f"model_skeleton: unknown skeleton version {meta.get('version')}")
    # Drop the record, keep every other metadata entry in its order.
    others = [(p.key, p.value) for p in model.metadata_props if p.key != KEY]
    del model.metadata_props[:]
    for k, v in others:
        p = model.metadata_props.add()
        p.key, p.value = k, v
    by_name = {t.name: t for t in model.graph.initializer}
    total = 0
    for rec in meta["tensors"]:
        t = by_name.get(rec["name"])
        if t is None:
            sys.exit(f"model_skeleton: initializer {rec['name']} of the record is not in the graph")
        if list(t.dims) != rec["dims"] or TensorProto.DataType.Name(t.data_type) != rec["dtype"]:
            sys.exit(f"model_skeleton: {rec['name']}: record and graph disagree on dtype or shape")
        a = draw(rec)
        t.raw_data = a.tobytes()
        total += a.nbytes
    tmp = args.out + ".tmp"
    onnx.save(model, tmp, save_as_external_data=False)
    os.replace(tmp, args.out)
    digest = sha256_file(args.out)
    print(f"model_skeleton: inflated {len(meta['tensors'])} tensors ({total / 2**20:.1f} MiB) "
          f"into {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB, {time.time() - t0:.1f} s; "
          f"numpy {np.__version__}, onnx {onnx.__version__})")
    print(f"sha256 {digest}  {args.out}")
    if args.expect and args.expect != digest:
        print(f"model_skeleton: WARNING: expected sha256 {args.expect}: this machine drew other weights "
              "(numpy or onnx version?); the model still works, but it is not the same as the bundler's",
              file=sys.stderr)
        return 3
    return 0


def synthetic_frames(n, size):
    """n different, image-like frames in [0, 1]: smooth gradients, blobs and edges."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = []
    for i in range(n):
        rng = np.random.Generator(np.random.PCG64(1000 + i))
        img = np.empty((3, size, size), np.float32)
        for c in range(3):
            a, b, f = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(1, 8)
            img[c] = 0.5 + 0.25 * np.sin(f * (a * xx + b * yy) * np.pi)
        for _ in range(4):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            img[:, mask] = rng.uniform(0, 1, size=(3, 1))
        frames.append(np.clip(img, 0, 1))
    # a near-duplicate of frame 0 (small noise): its distance must be the smallest
    near = frames[0] + np.random.Generator(np.random.PCG64(7)).normal(0, 0.01, frames[0].shape).astype(np.float32)
    frames.append(np.clip(near, 0, 1))
    return np.stack(frames)


def distances(model_path, frames):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    emb = sess.run(None, {name: frames})[0].astype(np.float64)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (emb @ emb.T) / (norm * norm.T)
    return emb, 1.0 - cos


def check(args):
    model = onnx.load(args.model, load_external_data=False)
    size = 224
    for p in model.metadata_props:
        if p.key == "dreamsim.input_size":
            size = int(p.value)
    frames = synthetic_frames(5, size)
    emb, d = distances(args.model, frames)
    n = len(frames)
    iu = np.triu_indices(n - 1, 1)
    pair = d[: n - 1, : n - 1][iu]
    print(f"embeddings {emb.shape}: finite {bool(np.isfinite(emb).all())}, "
          f"norm {np.linalg.norm(emb, axis=1).min():.4g}..{np.linalg.norm(emb, axis=1).max():.4g}")
    print(f"distances between different frames: min {pair.min():.4g} max {pair.max():.4g} "
          f"mean {pair.mean():.4g}; near-duplicate of frame 0: {d[0, n - 1]:.4g}")
    ok = (np.isfinite(emb).all() and np.isfinite(d).all() and pair.min() > 1e-4
          and pair.max() - pair.min() > 1e-3 * max(pair.max(), 1e-12) and d[0, n - 1] < pair.min())
    if args.reference:
        _, dr = distances(args.reference, frames)
        ref = dr[: n - 1, : n - 1][iu]
        print(f"reference model: distances min {ref.min():.4g} max {ref.max():.4g} mean {ref.mean():.4g}; "
              f"near-duplicate {dr[0, n - 1]:.4g}")
    print("check:", "ok" if ok else "FAILED (degenerate embeddings)")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("strip")
    s.add_argument("model")
    s.add_argument("out")
    s.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD)
    i = sub.add_parser("inflate")
    i.add_argument("skeleton")
    i.add_argument("out")
    i.add_argument("--expect", help="sha256 the inflated file should have (a warning if not)")
    c = sub.add_parser("check")
    c.add_argument("model")
    c.add_argument("--reference")
    args = ap.parse_args()
    if args.cmd == "strip":
        return strip(args) or 0
    if args.cmd == "inflate":
        return inflate(args)
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
