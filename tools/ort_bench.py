#!/usr/bin/env python3
"""ONNX Runtime's own speed on a DreamSim model, for comparison with the element.

Runs the model through onnxruntime's Python API on the CPU provider, in
batches, with a fixed number of intra-op threads, on random [0, 1) input (the
model's cost does not depend on the pixels), and prints frames/s of the model
alone: no decoding, no preprocessing, no GStreamer. The element's `bench`
example prints its own inference time per frame for the same comparison.

    python3 tools/ort_bench.py MODEL.onnx --threads 2 --batch-size 8 --frames 64
"""

import argparse
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--frames", type=int, default=64, help="frames timed, after one warm-up batch")
    args = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    t0 = time.perf_counter()
    session = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t0
    size = session.get_inputs()[0].shape[2]
    if not isinstance(size, int):
        size = 224
    rng = np.random.default_rng(0)
    batch = rng.random((args.batch_size, 3, size, size), dtype=np.float32)
    session.run(None, {"image": batch})  # warm-up
    done = 0
    t0 = time.perf_counter()
    while done < args.frames:
        n = min(args.batch_size, args.frames - done)
        session.run(None, {"image": batch[:n]})
        done += n
    wall = time.perf_counter() - t0
    print(
        f"onnxruntime {ort.__version__} CPU provider, {args.threads} threads, batch {args.batch_size}: "
        f"{done} frames in {wall:.2f} s = {done / wall:.2f} frames/s "
        f"({1000 * wall / done:.1f} ms/frame; model load {load:.1f} s)"
    )


if __name__ == "__main__":
    main()
