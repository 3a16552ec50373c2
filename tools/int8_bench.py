#!/usr/bin/env python3
"""Speed of several DreamSim ONNX models side by side in one run (fp32 against its int8 variants).

    tools/.venv/bin/python tools/int8_bench.py MODELS/dino_vitb16.onnx /tmp/dino-int8-*.onnx --threads 2

tools/ort_bench.py's method (onnxruntime's Python API, CPU provider, fixed intra-op threads, random [0, 1) input:
the cost does not depend on the pixels), for several models at once: every model is loaded first, then the timed
rounds alternate between the models (batch 1 and batch 8 in turn), so that whatever else the machine does falls on
all of them alike. Prints frames/s per model and batch size, the ratio to the first model, and the model's
dreamsim.precision / dreamsim.int8_spearman metadata.
"""
import argparse
import os
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('models', nargs='+', help='the first one is the baseline (fp32)')
    ap.add_argument('--threads', type=int, default=2, help='intra-op threads (default 2)')
    ap.add_argument('--batch-sizes', default='1,8', help='comma-separated (default 1,8)')
    ap.add_argument('--frames', type=int, default=24, help='frames timed per model and batch size per round')
    ap.add_argument('--rounds', type=int, default=2, help='alternating rounds (default 2)')
    a = ap.parse_args()
    batches = [int(b) for b in a.batch_sizes.split(',')]
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    x = rng.random((max(batches), 3, 224, 224), dtype=np.float32)
    sessions, meta = [], []
    for m in a.models:
        s = ort.InferenceSession(m, so, providers=['CPUExecutionProvider'])
        p = s.get_modelmeta().custom_metadata_map
        meta.append(f'{p.get("dreamsim.precision", "?")}'
                    + (f', Spearman {p["dreamsim.int8_spearman"]}' if 'dreamsim.int8_spearman' in p else ''))
        for b in batches:
            s.run(None, {'image': x[:b]})  # warm-up
        sessions.append(s)
    done = {(i, b): [0, 0.0] for i in range(len(sessions)) for b in batches}
    for _ in range(a.rounds):
        for b in batches:
            for i, s in enumerate(sessions):
                n = 0
                t = time.perf_counter()
                while n < a.frames:
                    s.run(None, {'image': x[:b]})
                    n += b
                done[(i, b)][0] += n
                done[(i, b)][1] += time.perf_counter() - t
    print(f'onnxruntime {ort.__version__} CPU provider, {a.threads} threads, {a.rounds} alternating rounds of '
          f'{a.frames} frames per model and batch size')
    print(f'| model | metadata | ' + ' | '.join(f'batch {b} frames/s | vs first' for b in batches) + ' |')
    print('|---|---|' + '---|---|' * len(batches))
    for i, m in enumerate(a.models):
        cells = []
        for b in batches:
            n, t = done[(i, b)]
            n0, t0 = done[(0, b)]
            cells += [f'{n / t:.2f}', f'{(n / t) / (n0 / t0):.2f}x']
        print(f'| {os.path.basename(m)} | {meta[i]} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
