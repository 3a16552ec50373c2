#!/usr/bin/env python3
"""Int8 test fixtures: the tiny models of tests/fixtures, quantized.

The element's int8 path (src/int8.rs) picks up `<type>-int8.onnx` beside the
fp32 model; its tests need such files without the export environment. This
script quantizes the tiny fixtures the way tools/quantize_int8.py quantizes
real models (QDQ, static, per-channel weights) but calibrates on seeded
random images: the fixtures test which file runs and what the element says,
not how well int8 agrees with fp32 on natural images (docs/int8.md).

    python3 -m pip install -r tools/requirements-fixtures.txt
    python3 tools/make_int8_fixtures.py        # writes tests/fixtures/int8/

Files (each folder holds one `tiny_ensemble-int8.onnx`, to be copied beside
a copy of tests/fixtures/tiny_ensemble.onnx by the tests):
- `int8/tiny_ensemble-int8.onnx`: the int8 model, its measured agreement
  recorded as the real tool records it;
- `int8/below_guard/tiny_ensemble-int8.onnx`: the same, marked as accepted
  below the 0.999 guard;
- `int8/wrong_type/tiny_ensemble-int8.onnx`: tiny_dino quantized, a model
  of another type under the ensemble's int8 name.
"""

import argparse
import hashlib
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")


class Images(CalibrationDataReader):
    """Seeded random images in [0, 1), one batch of one at a time."""

    def __init__(self, seed: int, count: int):
        rng = np.random.default_rng(seed)
        self.items = iter(
            [{"image": rng.random((1, 3, 224, 224), dtype=np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self.items, None)


def frames(seed: int, count: int) -> np.ndarray:
    """A drifting sequence: each frame a step of random size from the
    previous one (blended towards a new image), so previous-frame distances
    spread over a range as a video's do."""
    rng = np.random.default_rng(seed)
    out, cur = [], rng.random((3, 224, 224), dtype=np.float32)
    for _ in range(count):
        step = rng.uniform(0.0, 1.0) ** 2
        cur = (1 - step) * cur + step * rng.random((3, 224, 224), dtype=np.float32)
        out.append(cur.astype(np.float32))
    return np.stack(out)


def embed(path: str, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"image": x[i:i + 1]})[0] for i in range(len(x))])


def prev_distances(e: np.ndarray) -> np.ndarray:
    return 1.0 - np.sum(e[1:] * e[:-1], axis=1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def set_metadata(model: onnx.ModelProto, meta: dict) -> None:
    """Adds or replaces `meta` in the model's metadata, kept sorted by key."""
    props = {p.key: p.value for p in model.metadata_props}
    props.update(meta)
    del model.metadata_props[:]
    for k in sorted(props):
        model.metadata_props.add(key=k, value=props[k])


def save(model: onnx.ModelProto, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(model, dst)


def quantize(src: str, meta: dict) -> onnx.ModelProto:
    """`src` quantized (calibrated on seeded random images), with `meta` added."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "q.onnx")
        quantize_static(src, out, Images(seed=8, count=16), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        m = onnx.load(out)
    set_metadata(m, meta)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(FIXTURES, "int8"))
    args = ap.parse_args()

    fp32 = os.path.join(FIXTURES, "tiny_ensemble.onnx")
    sha = hashlib.sha256(open(fp32, "rb").read()).hexdigest()
    main_out = os.path.join(args.out, "tiny_ensemble-int8.onnx")
    model = quantize(fp32, {"dreamsim.precision": "int8", "dreamsim.int8_fp32_sha256": sha})
    save(model, main_out)

    # Its agreement, measured on the file as written, then recorded in it.
    x = frames(seed=9, count=33)
    d32, d8 = prev_distances(embed(fp32, x)), prev_distances(embed(main_out, x))
    rho = spearman(d32, d8)
    delta = np.abs(d32 - d8)
    print(f"tiny_ensemble int8: Spearman {rho:.6f}, max |delta| {delta.max():.3e}, "
          f"mean |delta| {delta.mean():.3e} on 32 previous-frame distances")
    set_metadata(model, {"dreamsim.int8_spearman": f"{rho:.6f}",
                         "dreamsim.int8_max_abs_delta": f"{delta.max():.3e}",
                         "dreamsim.int8_mean_abs_delta": f"{delta.mean():.3e}"})
    save(model, main_out)
    set_metadata(model, {"dreamsim.int8_accepted_below_guard": "true",
                         "dreamsim.int8_accepted_spearman": "0.9"})
    save(model, os.path.join(args.out, "below_guard", "tiny_ensemble-int8.onnx"))
    dino = os.path.join(FIXTURES, "tiny_dino.onnx")
    save(quantize(dino, {"dreamsim.precision": "int8"}),
         os.path.join(args.out, "wrong_type", "tiny_ensemble-int8.onnx"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
