#!/usr/bin/env python3
"""Generate the hostile-input model fixtures under tests/fixtures/ (robustness tests, issue #14).

    python3 tools/make_hostile_fixtures.py [--out DIR]

Each file is the `good_small.onnx` graph of tools/make_fixtures.py changed in one way:

- bad_nan.onnx, bad_inf.onnx: value 2 of every `embedding` row is NaN / +Inf (the graph multiplies
  the normalised embedding by a constant vector that holds one NaN / Inf);
- bad_norm.onnx: the embedding is centred and normalised, then scaled by 2 (norm 2, not 1);
- external_escape.onnx: the `proj` initializer is stored as ONNX external data at
  `../../etc/hostname` (outside the model's folder);
- external_absolute.onnx: the same at the absolute path `/etc/hostname`;
- external_data/good_external.onnx + external_data/good_external.weights: a legitimate model whose
  `proj` initializer is external data in a file beside it (inside its folder): it must load;
- custom_op.onnx: the output goes through an operator of the custom domain `com.example.custom`,
  and the metadata names a library for it (`custom_op_library`): a runtime that loaded libraries
  on a model's say-so would try it; ONNX Runtime must refuse the unknown operator instead.

Deterministic (the weights come from make_fixtures.Weights(99)); needs what make_fixtures.py needs
(tools/requirements-fixtures.txt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (the fixture builders live there)

GOOD_META = mf.metadata("fixture_small", 8, "dino:8")
DIM = 8


def small_model_with_scale(scale: np.ndarray, doc: str) -> onnx.ModelProto:
    """good_small's graph, its normalised output multiplied element-wise by `scale`."""
    w = mf.Weights(99)
    g = mf.Graph()
    x = g.op("ReduceMean", ["image"], "mean_colour", axes=[2, 3], keepdims=0)
    x = g.op("MatMul", [x, g.const("proj", w.normal((3, DIM), 1.0))], "projected")
    x = mf.centre_and_normalise(g, x, "normalised")
    x = g.op("Mul", [x, g.const("fault", scale.reshape(1, DIM))], "embedding")
    return mf.finish_model(
        g,
        [mf.image_input()],
        [onnx.helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        GOOD_META,
        doc,
    )


def with_external_proj(model: onnx.ModelProto, location: str, length: int) -> onnx.ModelProto:
    """Moves the `proj` initializer's data to external data at `location` (offset 0)."""
    for t in model.graph.initializer:
        if t.name == "proj":
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.data_location = TensorProto.EXTERNAL
            del t.external_data[:]
            for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            return model
    raise AssertionError("no proj initializer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=mf.DEFAULT_OUT, help="output folder (default: %(default)s)")
    out: Path = ap.parse_args().out

    ones = np.ones(DIM, np.float32)
    nan, inf = ones.copy(), ones.copy()
    nan[2], inf[2] = np.nan, np.inf
    faults = {
        "bad_nan": (nan, "value 2 of every embedding is NaN"),
        "bad_inf": (inf, "value 2 of every embedding is +Inf"),
        "bad_norm": (2 * ones, "every embedding has norm 2 instead of 1"),
    }
    for name, (scale, why) in faults.items():
        m = small_model_with_scale(scale, f"Numeric-fault test fixture: {why}.")
        mf.write(out / f"{name}.onnx", m.SerializeToString())

    good = mf.build_small_model(meta=GOOD_META, doc="Test fixture: `proj` is external data.")
    proj = next(t for t in good.graph.initializer if t.name == "proj")
    weights = onnx.numpy_helper.to_array(proj).astype("<f4").tobytes()
    for name, location in (("external_escape", "../../etc/hostname"), ("external_absolute", "/etc/hostname")):
        m = onnx.ModelProto()
        m.CopyFrom(good)
        m = with_external_proj(m, location, len(weights))
        m.doc_string = f"Untrusted-file test fixture: `proj` is external data at {location}."
        mf.write(out / f"{name}.onnx", m.SerializeToString())

    m = onnx.ModelProto()
    m.CopyFrom(good)
    m = with_external_proj(m, "good_external.weights", len(weights))
    mf.write(out / "external_data" / "good_external.onnx", m.SerializeToString())
    mf.write(out / "external_data" / "good_external.weights", weights)

    m = onnx.ModelProto()
    m.CopyFrom(good)
    for node in m.graph.node:
        if "embedding" in node.output:
            node.output[0] = "before_custom"
    m.graph.node.append(
        onnx.helper.make_node(
            "CustomIdentity", ["before_custom"], ["embedding"], name="custom", domain="com.example.custom"
        )
    )
    m.opset_import.append(onnx.helper.make_opsetid("com.example.custom", 1))
    entry = m.metadata_props.add()
    entry.key, entry.value = "custom_op_library", "/nonexistent/libcustom_ops.so"
    m.doc_string = "Untrusted-file test fixture: an operator of an unregistered custom domain."
    mf.write(out / "custom_op.onnx", m.SerializeToString())  # no checker: the op is unknown to ONNX

    # Self-checks: the faulty models run and show their fault; the external one loads and agrees
    # with good_small.onnx.
    x = np.full((2, 3, mf.INPUT_SIZE, mf.INPUT_SIZE), 0.5, np.float32)
    outputs = {name: mf.session(out / f"{name}.onnx").run(None, {"image": x})[0] for name in faults}
    assert np.isnan(outputs["bad_nan"][:, 2]).all()
    assert np.isposinf(outputs["bad_inf"][:, 2]).all()
    assert np.allclose(np.linalg.norm(outputs["bad_norm"], axis=1), 2.0, atol=1e-5)
    ext = mf.session(out / "external_data" / "good_external.onnx").run(None, {"image": x})[0]
    ref = mf.session(out / "good_small.onnx").run(None, {"image": x})[0]
    assert np.array_equal(ext, ref)
    try:
        mf.session(out / "custom_op.onnx")
    except Exception:
        pass
    else:
        raise AssertionError("custom_op.onnx loaded without its library")
    print(f"wrote hostile fixtures to {out}")


if __name__ == "__main__":
    main()
