#!/usr/bin/env python3
"""Parity of the whole path: the `dreamsim` GStreamer element against the reference package, frame by frame.

    tools/.venv/bin/python tools/parity.py VIDEO --model MODEL.onnx --cache-dir CHECKPOINTS [options]

1. Decodes VIDEO once, with a gst-launch-1.0 subprocess
   (filesrc ! decodebin ! [identity eos-after=N] ! videoconvert ! video/x-raw,format=RGB ! filesink),
   into a temporary file of raw RGB frames; width, height and frame rate come from the negotiated caps.
2. Runs the element on exactly those bytes through a real pipeline:
   filesrc ! rawvideoparse format=rgb ... ! dreamsim model-location=MODEL execution-provider=cpu ! fakesink,
   under `gst-launch-1.0 -m`, and parses the `dreamsim` element messages (frame, distance, reference-distance).
3. Runs the reference package (dreamsim==0.2.1) on the same RGB frames: PIL.Image.fromarray(frame), the
   reference's own `preprocess` (PIL bicubic resize to 224x224, ToTensor) and `model.embed`; the distance of
   frame i is 1 - cos(embed(frame i-1), embed(frame i)), which is what `model(frame i-1, frame i)` returns
   (checked on the first pair). With --reference IMAGE: `model(IMAGE, frame)` against the element's
   reference-distance (reference-location=IMAGE).
4. Prints max and mean |delta| of the distances, the Spearman rank correlation of the two distance sequences,
   and whether the top-k largest-distance frames agree; optionally a per-frame table (--csv) and a JSON summary.

Diagnosis built in: a --reference image that is not PNG/BMP (JPEG, WebP) is also given to the element as a PNG of
Pillow's decoding (a second, short run), which separates the image decoders from the rest; a note says when the
installed Pillow resizes the frames or the image with another pass order than the element (which reproduces
Pillow >= 13), and --pass-order pillow13 makes an older Pillow follow Pillow 13's order.

The reference's checkpoint cache (--cache-dir) is the same `cache_dir` the reference package takes: the real
checkpoints, or a RANDOM-weight folder made by tools/make_random_checkpoints.py (same code path; only the
directory differs). MODEL must be exported from the same checkpoints (tools/export_onnx.py).

Tolerance: 1e-5 for fp32 models, 5e-3 for fp16 (see DEFAULT_TOL below). docs/parity.md has the figures.

Exit status: 0 parity within --tolerance, 1 parity failed (a |delta| beyond tolerance, or frames missing),
2 usage or environment error (gst-launch missing, pipeline error, model unreadable, ...).
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Default tolerance on |element - reference| per distance, by the model's dreamsim.precision.
# fp32 (CPU provider): both sides compute in float32 with different engines (PyTorch vs ONNX Runtime: other GEMM
# kernels, fusions and summation orders). Measured on every run of this script (ensemble and all single-branch
# types, batch 1 and 4, odd sizes): <= 2.5e-7 on distances. A preprocessing difference is two to three orders of
# magnitude larger even when it is only a level or two on some pixels: Pillow 11's resize pass order instead of
# Pillow 13's on tall frames gave 6.6e-5 .. 1.3e-4, another JPEG decoder for the reference image 2.5e-5 .. 1.1e-3
# (random weights). 1e-5 is 40x the fp32 noise and below every such defect seen; a looser 1e-4 would let some of
# them pass. GPU providers (TensorRT allows TF32 in fp32 engines; the CUDA provider runs with TF32 off but other
# kernels) and fp16 models need a looser --tolerance.
# fp16: the exporter's own fp16 tolerance (half precision carries ~3 significant digits).
DEFAULT_TOL = {'fp32': 1e-5, 'fp16': 5e-3}


class Fail(Exception):
    pass


def log(msg):
    print(f'[parity] {msg}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# ONNX metadata without loading the (up to 1 GB) model: walk the top-level fields of the ModelProto.
# ---------------------------------------------------------------------------------------------------------------

def _varint(f):
    shift = result = 0
    while True:
        b = f.read(1)
        if not b:
            raise EOFError
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7


def _entry(buf):
    """key/value of a StringStringEntryProto (key = field 1, value = field 2)."""
    i, kv = 0, {}
    while i < len(buf):
        tag, shift = 0, 0
        while True:
            tag |= (buf[i] & 0x7F) << shift
            i += 1
            if not buf[i - 1] & 0x80:
                break
            shift += 7
        n, shift = 0, 0
        while True:
            n |= (buf[i] & 0x7F) << shift
            i += 1
            if not buf[i - 1] & 0x80:
                break
            shift += 7
        kv[tag >> 3] = buf[i:i + n].decode('utf-8', 'replace')
        i += n
    return kv.get(1, ''), kv.get(2, '')


def onnx_metadata(path):
    """metadata_props (ModelProto field 14) of an ONNX file, skipping the graph by seeking."""
    meta = {}
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        while f.tell() < size:
            key = _varint(f)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _varint(f)
            elif wire == 1:
                f.seek(8, 1)
            elif wire == 5:
                f.seek(4, 1)
            elif wire == 2:
                n = _varint(f)
                if field == 14:
                    k, v = _entry(f.read(n))
                    meta[k] = v
                else:
                    f.seek(n, 1)
            else:
                raise ValueError(f'{path}: not an ONNX model (protobuf wire type {wire})')
    return meta


# ---------------------------------------------------------------------------------------------------------------
# GStreamer subprocesses
# ---------------------------------------------------------------------------------------------------------------

def gst_env(plugin_path):
    env = dict(os.environ)
    if plugin_path:
        env['GST_PLUGIN_PATH'] = plugin_path + (os.pathsep + env['GST_PLUGIN_PATH'] if env.get('GST_PLUGIN_PATH')
                                                else '')
    return env


def run_gst(args, env, what, progress=None):
    """Run gst-launch-1.0 (stderr merged into stdout); progress(line) sees each line as it comes."""
    t = time.time()
    p = subprocess.Popen(['gst-launch-1.0'] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors='replace')
    lines = []
    for line in p.stdout:
        lines.append(line.rstrip('\n'))
        if progress:
            progress(lines[-1])
    rc = p.wait()
    dt = time.time() - t
    errors = [line for line in lines if line.startswith('ERROR') or '(error):' in line
              or 'erroneous pipeline' in line]
    if rc != 0 or errors:
        tail = '\n'.join(lines[-25:])
        raise Fail(f'{what}: gst-launch-1.0 failed (exit {rc}):\n  gst-launch-1.0 {" ".join(args)}\n{tail}')
    return '\n'.join(lines), dt


def parse_caps(text, name):
    """width, height, framerate (num, den) of the caps that the element `name` negotiated (gst-launch -v)."""
    caps = None
    for line in text.splitlines():
        if f'{name}.GstPad:sink: caps = ' in line:
            caps = line.split('caps = ', 1)[1]
    if caps is None:
        raise Fail('could not find the decoded caps in the gst-launch-1.0 -v output')
    w = re.search(r'width=\(int\)(\d+)', caps)
    h = re.search(r'height=\(int\)(\d+)', caps)
    fr = re.search(r'framerate=\(fraction\)(\d+)/(\d+)', caps)
    fmt = re.search(r'format=\(string\)(\w+)', caps)
    if not (w and h and fmt) or fmt.group(1) != 'RGB':
        raise Fail(f'unexpected decoded caps: {caps}')
    num, den = (int(fr.group(1)), int(fr.group(2))) if fr else (0, 1)
    return int(w.group(1)), int(h.group(1)), (num, den), caps


def decode(video, out_path, limit, env):
    """Decode VIDEO once to packed RGB frames in out_path (GStreamer's default RGB layout: rows padded to 4 bytes)."""
    args = ['-v', 'filesrc', f'location={video}', '!', 'decodebin', '!']
    if limit:
        args += ['identity', f'eos-after={limit}', '!']
    args += ['videoconvert', '!', 'video/x-raw,format=RGB', '!', 'filesink', 'name=rgbout', f'location={out_path}']
    out, dt = run_gst(args, env, f'decoding {video}')
    w, h, fr, caps = parse_caps(out, 'rgbout')
    stride = (w * 3 + 3) & ~3
    frame_size = stride * h
    size = os.path.getsize(out_path)
    if size % frame_size:
        raise Fail(f'{out_path}: {size} bytes is not a whole number of {w}x{h} RGB frames (stride {stride})')
    return dict(width=w, height=h, stride=stride, frame_size=frame_size, framerate=fr, caps=caps,
                frames=size // frame_size, seconds=dt)


MSG_RE = re.compile(r'from element "([^"]+)" \(element\): dreamsim, (.*)$')
FIELD_RE = {
    'frame': re.compile(r'(?:^|[ ,])frame=\(guint64\)(\d+)'),
    'distance': re.compile(r'(?:^|[ ,])distance=\(double\)([-+0-9.eEinfINFaA]+)'),
    'reference-distance': re.compile(r'(?:^|[ ,])reference-distance=\(double\)([-+0-9.eEinfINFaA]+)'),
    'timestamp': re.compile(r'(?:^|[ ,])timestamp=\(guint64\)(\d+)'),
}


def parse_messages(text, element='dreamsim0'):
    """{frame: {'distance': float, 'reference-distance': float, 'timestamp': int}} from gst-launch -m output."""
    out = {}
    for line in text.splitlines():
        m = MSG_RE.search(line)
        if not m or m.group(1) != element:
            continue
        body = m.group(2)
        fm = FIELD_RE['frame'].search(body)
        if not fm:
            continue
        rec = {}
        for k in ('distance', 'reference-distance'):
            v = FIELD_RE[k].search(body)
            if v:
                rec[k] = float(v.group(1))
        ts = FIELD_RE['timestamp'].search(body)
        if ts:
            rec['timestamp'] = int(ts.group(1))
        out[int(fm.group(1))] = rec
    return out


def run_element(info, rgb_path, n, a, reference, env):
    fr = info['framerate'] if info['framerate'][0] > 0 else (25, 1)
    props = [f'model-location={a.model}', f'execution-provider={a.execution_provider}', f'threads={a.threads}',
             f'batch-size={a.batch_size}']
    if reference:
        props.append(f'reference-location={reference}')
    if a.onnxruntime:
        props.append(f'onnxruntime-location={a.onnxruntime}')
    args = ['-m', 'filesrc', f'location={rgb_path}', f'blocksize={info["frame_size"]}', f'num-buffers={n}', '!',
            'rawvideoparse', f'width={info["width"]}', f'height={info["height"]}', 'format=rgb',
            f'framerate={fr[0]}/{fr[1]}', f'plane-strides=<{info["stride"]}>', 'plane-offsets=<0>',
            f'frame-size={info["frame_size"]}', '!', 'dreamsim', 'name=dreamsim0'] + props + \
           ['!', 'fakesink', 'sync=false']
    log('element: gst-launch-1.0 ' + ' '.join(args))
    t0, seen = time.time(), [0]

    def progress(line):
        if MSG_RE.search(line):
            seen[0] += 1
            if seen[0] == 1 or seen[0] % 25 == 0:
                log(f'element: {seen[0]}/{n} frames ({time.time() - t0:.0f}s)')

    out, dt = run_gst(args, env, 'running the dreamsim element', progress)
    msgs = parse_messages(out)
    return msgs, dt


# ---------------------------------------------------------------------------------------------------------------
# Statistics (NumPy only)
# ---------------------------------------------------------------------------------------------------------------

def ranks(x):
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata."""
    import numpy as np
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind='mergesort')
    r = np.empty(len(x), dtype=np.float64)
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    import numpy as np
    if len(a) < 2:
        return float('nan')
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den else float('nan')


def compare(name, idx, elem, ref, k, tol):
    """Figures for one distance sequence (element vs reference, same frame indices)."""
    import numpy as np
    e = np.asarray(elem, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    d = np.abs(e - r)
    kk = min(k, len(e))
    top_e = [idx[i] for i in np.argsort(-e, kind='mergesort')[:kk]]
    top_r = [idx[i] for i in np.argsort(-r, kind='mergesort')[:kk]]
    worst = int(np.argmax(d)) if len(d) else 0
    return {
        'quantity': name,
        'frames_compared': len(e),
        'max_abs_delta': float(d.max()) if len(d) else float('nan'),
        'mean_abs_delta': float(d.mean()) if len(d) else float('nan'),
        'max_rel_delta': float((d / np.maximum(np.abs(r), 1e-12)).max()) if len(d) else float('nan'),
        'worst_frame': idx[worst] if len(d) else None,
        'spearman': spearman(e, r),
        'reference_range': [float(r.min()), float(r.max())] if len(r) else None,
        f'top{kk}_element': top_e,
        f'top{kk}_reference': top_r,
        f'top{kk}_same_set': set(top_e) == set(top_r),
        f'top{kk}_same_order': top_e == top_r,
        'tolerance': tol,
        'ok': bool(len(d)) and bool(d.max() <= tol),
    }


# ---------------------------------------------------------------------------------------------------------------
# Pillow's pass order: the element reproduces Pillow >= 13; an older installed Pillow resizes some shapes
# (much taller than wide) with the other pass order, which shows in the last bit of some pixels.
# ---------------------------------------------------------------------------------------------------------------

def pillow_vertical_first(in_w, in_h, out=224):
    import PIL
    v = tuple(int(p) for p in re.findall(r'\d+', PIL.__version__)[:2])
    if in_w == out or in_h == out:
        return False
    if v >= (13, 0):
        return in_h > out and (in_h - out) > 2 * (in_w - out)
    if v >= (12, 2):
        return in_h > 100 * in_w and out < in_h
    return False


def element_vertical_first(in_w, in_h, out=224):
    if in_w == out or in_h == out:
        return False
    return in_h > out and (in_h - out) > 2 * (in_w - out)


def pass_order_note(w, h, what, mode='installed'):
    import PIL
    if pillow_vertical_first(w, h) != element_vertical_first(w, h):
        if mode == 'pillow13':
            return (f'{what} ({w}x{h}): the installed Pillow {PIL.__version__} would resize it with the other pass '
                    'order than the element; the reference ran Pillow 13\'s order (--pass-order pillow13)')
        return (f'{what} ({w}x{h}): the installed Pillow {PIL.__version__} resizes it with the other pass order than '
                'the element (which reproduces Pillow >= 13): expect small preprocessing differences '
                '(--pass-order pillow13 makes the reference resize as Pillow 13 does)')
    return None


# ---------------------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n', 2)[2])
    ap.add_argument('video', help='any video file GStreamer can decode')
    ap.add_argument('--model', required=True, help='the exported ONNX model the element runs')
    ap.add_argument('--type', help='DreamSim type for the reference (default: the model\'s dreamsim.type)')
    ap.add_argument('--cache-dir', required=True,
                    help='the reference package\'s checkpoint cache (cache_dir): real checkpoints, or a random-weight '
                         'folder made by tools/make_random_checkpoints.py')
    ap.add_argument('--frames', type=int, default=0, help='compare the first N frames only (default: all)')
    ap.add_argument('--threads', type=int, default=max(1, os.cpu_count() or 1),
                    help='CPU threads for the element (ONNX Runtime) and for PyTorch (default %(default)s)')
    ap.add_argument('--batch-size', type=int, default=1,
                    help='frames per model run, for the element (batch-size) and the reference (default 1)')
    ap.add_argument('--reference', metavar='IMAGE',
                    help='also compare reference-distance: element reference-location=IMAGE vs reference '
                         'model(IMAGE, frame)')
    ap.add_argument('--tolerance', type=float,
                    help='max |delta| allowed per distance (default 1e-5 for fp32 models, 5e-3 for fp16; see the comment '
                         'at DEFAULT_TOL)')
    ap.add_argument('--top-k', type=int, default=5, help='size of the top-k agreement check (default 5)')
    ap.add_argument('--csv', help='write the per-frame table here')
    ap.add_argument('--json', help='write the summary here')
    ap.add_argument('--execution-provider', default='cpu', help='element execution-provider (default cpu)')
    ap.add_argument('--onnxruntime', help='element onnxruntime-location (default: the element\'s search)')
    ap.add_argument('--plugin-path', default=os.path.join(REPO, 'target', 'release'),
                    help='prepended to GST_PLUGIN_PATH (default %(default)s)')
    ap.add_argument('--keep-frames', metavar='FILE', help='keep the decoded RGB frames in FILE')
    ap.add_argument('--pass-order', choices=['installed', 'pillow13'], default='installed',
                    help='diagnosis: "pillow13" makes the reference resize with Pillow 13\'s pass order (vertical '
                         'pass first for images much taller than wide, as the element does) even on an older '
                         'installed Pillow, by running the vertical pass as its own resize first (default: the '
                         'installed Pillow, as the reference package runs)')
    ap.add_argument('--no-decode-check', action='store_true',
                    help='with a --reference that is not PNG/BMP: skip the second, short element run with a '
                         'lossless PNG copy of Pillow\'s decoding of IMAGE (it tells JPEG/WebP decoder differences '
                         'from the rest)')
    a = ap.parse_args(argv)

    for tool in ('gst-launch-1.0',):
        if shutil.which(tool) is None:
            print(f'ERROR: {tool} not found (apt-get install gstreamer1.0-tools)', file=sys.stderr)
            return 2
    for path, what in ((a.video, 'video'), (a.model, '--model'), (a.cache_dir, '--cache-dir')):
        if not os.path.exists(path):
            print(f'ERROR: {what} {path} does not exist', file=sys.stderr)
            return 2
    if a.reference and not os.path.isfile(a.reference):
        print(f'ERROR: --reference {a.reference} does not exist', file=sys.stderr)
        return 2
    a.model = os.path.abspath(a.model)
    a.cache_dir = os.path.abspath(a.cache_dir)
    reference = os.path.abspath(a.reference) if a.reference else None
    try:
        meta = onnx_metadata(a.model)
    except (OSError, ValueError, EOFError, IndexError) as e:
        print(f'ERROR: cannot read the metadata of {a.model}: {e}', file=sys.stderr)
        return 2
    dtype = a.type or meta.get('dreamsim.type')
    if not dtype:
        print(f'ERROR: {a.model} has no dreamsim.type metadata: pass --type', file=sys.stderr)
        return 2
    if a.type and meta.get('dreamsim.type') and a.type != meta['dreamsim.type']:
        log(f'WARNING: --type {a.type}, but the model says dreamsim.type={meta["dreamsim.type"]}')
    precision = meta.get('dreamsim.precision', 'fp32')
    tol = a.tolerance if a.tolerance is not None else DEFAULT_TOL.get(precision, DEFAULT_TOL['fp32'])
    weights = meta.get('dreamsim.weights', '?')
    random_cache = os.path.exists(os.path.join(a.cache_dir, 'RANDOM_WEIGHTS_README.txt'))
    log(f'model {a.model}: type {dtype}, precision {precision}, weights {weights}; reference cache {a.cache_dir} '
        f'({"RANDOM weights" if random_cache else "real checkpoints"}); tolerance {tol:g}')
    if (weights == 'random-offline-cache') != random_cache:
        log('WARNING: the model and the checkpoint cache do not look like the same weights '
            f'(model: {weights}, cache: {"random" if random_cache else "official"})')

    env = gst_env(a.plugin_path if os.path.isdir(a.plugin_path) else None)
    summary = {'video': os.path.abspath(a.video), 'model': a.model, 'type': dtype, 'precision': precision,
               'weights': weights, 'cache_dir': a.cache_dir, 'threads': a.threads, 'batch_size': a.batch_size,
               'reference_image': reference, 'tolerance': tol}
    tmpdir = tempfile.mkdtemp(prefix='dreamsim-parity-')
    try:
        rgb_path = os.path.abspath(a.keep_frames) if a.keep_frames else os.path.join(tmpdir, 'frames.rgb')
        # (1) decode once
        # identity eos-after (which keeps the decoded file small) may stop a buffer early or late: ask for a
        # margin, and decode the whole video if that still falls short of --frames
        info = decode(os.path.abspath(a.video), rgb_path, a.frames + 4 if a.frames else 0, env)
        if a.frames and info['frames'] < a.frames:
            info = decode(os.path.abspath(a.video), rgb_path, 0, env)
        n = info['frames'] if not a.frames else min(a.frames, info['frames'])
        log(f'decoded {info["frames"]} frames {info["width"]}x{info["height"]} RGB '
            f'({info["framerate"][0]}/{info["framerate"][1]} fps) in {info["seconds"]:.1f}s; comparing {n}')
        summary.update(width=info['width'], height=info['height'], frames=n, decode_s=info['seconds'])
        notes = [x for x in (pass_order_note(info['width'], info['height'], 'the frames', a.pass_order),) if x]

        # (2) the element, through a real pipeline
        msgs, t_elem = run_element(info, rgb_path, n, a, reference, env)
        log(f'element: {len(msgs)} messages in {t_elem:.1f}s')
        summary['element_s'] = t_elem
        missing = [i for i in range(n) if i not in msgs]
        if missing:
            print(f'ERROR: the element posted no dreamsim message for {len(missing)} frame(s) '
                  f'(first: {missing[:5]})', file=sys.stderr)

        # (3) the reference package on the same RGB frames
        import numpy as np
        warnings.filterwarnings('ignore', category=FutureWarning)
        warnings.filterwarnings('ignore', message='.*weight_norm.*')
        warnings.filterwarnings('ignore', message='Already found a `peft_config` attribute')
        import torch
        import torch.nn.functional as F
        from PIL import Image
        from dreamsim import dreamsim
        torch.set_num_threads(a.threads)
        t = time.time()
        model, preprocess = dreamsim(pretrained=True, device='cpu', cache_dir=a.cache_dir, normalize_embeds=True,
                                     dreamsim_type=dtype)
        t_load = time.time() - t
        frames = np.memmap(rgb_path, dtype=np.uint8, mode='r', shape=(info['frames'], info['height'],
                                                                        info['stride']))

        def prep(img):
            # the reference's preprocess; with --pass-order pillow13 the vertical pass runs first (as its own
            # resize, same coefficients and uint8 rounding) where Pillow >= 13 would run it first
            img = img.convert('RGB')
            if a.pass_order == 'pillow13' and element_vertical_first(*img.size) and \
                    not pillow_vertical_first(*img.size):
                img = img.resize((img.size[0], 224), Image.BICUBIC)
            return preprocess(img)

        def frame_image(i):
            row = np.ascontiguousarray(frames[i, :, :info['width'] * 3]).reshape(info['height'], info['width'], 3)
            return Image.fromarray(row, 'RGB')

        t = time.time()
        embs = []
        with torch.no_grad():
            ref_x = None
            if reference:
                ref_img = Image.open(reference)
                notes += [x for x in (pass_order_note(*ref_img.size, 'the reference image', a.pass_order),) if x]
                ref_x = prep(ref_img)
                ref_emb = model.embed(ref_x)
            for s in range(0, n, a.batch_size):
                x = torch.cat([prep(frame_image(i)) for i in range(s, min(n, s + a.batch_size))])
                embs.append(model.embed(x))
                if s == 0 or (s // a.batch_size) % 25 == 0:
                    log(f'reference: {min(n, s + a.batch_size)}/{n} frames ({time.time() - t:.0f}s)')
            emb = torch.cat(embs)
            ref_d = (1 - F.cosine_similarity(emb[:-1], emb[1:], dim=-1)).double().numpy()
            ref_rd = (1 - F.cosine_similarity(ref_emb.expand_as(emb), emb, dim=-1)).double().numpy() \
                if reference else None
            # the batched embeddings stand for model(img_a, img_b): check it on the first pair
            self_check = None
            if n >= 2:
                self_check = abs(float(model(prep(frame_image(0)), prep(frame_image(1)))[0]) -
                                 float(ref_d[0]))
        t_ref = time.time() - t
        log(f'reference: model loaded in {t_load:.1f}s, {n} frames in {t_ref:.1f}s'
            + (f'; model(frame0, frame1) vs batched embed: |delta| = {self_check:.2g}' if self_check is not None
               else ''))
        summary.update(reference_load_s=t_load, reference_s=t_ref, reference_self_check=self_check,
                       pass_order=a.pass_order)

        # reference image in a decoder-dependent format (JPEG, lossy WebP, ...): run the element once more, on the
        # first frames, with a lossless PNG copy of Pillow's decoding, to tell decoder differences from the rest
        decode_check = None
        if reference and not a.no_decode_check:
            with Image.open(reference) as im:
                fmt = im.format
            if fmt not in ('PNG', 'BMP'):
                png = os.path.join(tmpdir, 'reference-pil-decoded.png')
                Image.open(reference).convert('RGB').save(png)
                k = min(n, 2)
                log(f'reference image is {fmt}: element run on {k} frame(s) with Pillow\'s decoding of it as PNG')
                msgs2, _ = run_element(info, rgb_path, k, a, png, env)
                ridx = [i for i in range(k) if 'reference-distance' in msgs2.get(i, {})]
                if ridx:
                    d_png = max(abs(msgs2[i]['reference-distance'] - ref_rd[i]) for i in ridx)
                    d_own = max(abs(msgs[i]['reference-distance'] - ref_rd[i]) for i in ridx
                                if 'reference-distance' in msgs.get(i, {}))
                    decode_check = {'format': fmt, 'frames': len(ridx), 'max_abs_delta_element_decoder': d_own,
                                    'max_abs_delta_pillow_decoded_png': d_png}
                    notes.append(f'reference image is {fmt}: on frames 0..{k - 1}, element vs reference '
                                 f'reference-distance |delta| {d_own:.3g} with the element decoding the {fmt} '
                                 f'itself, {d_png:.3g} with a PNG of Pillow\'s decoding (the difference is the '
                                 f'{fmt} decoder: the element\'s Rust decoder vs Pillow\'s libjpeg)'
                                 if fmt == 'JPEG' else
                                 f'reference image is {fmt}: on frames 0..{k - 1}, element vs reference '
                                 f'reference-distance |delta| {d_own:.3g} decoding it in the element, {d_png:.3g} '
                                 f'with a PNG of Pillow\'s decoding')
        summary['decode_check'] = decode_check

        # (4) figures
        idx = [i for i in range(1, n) if i in msgs and 'distance' in msgs[i]]
        results = [compare('distance', idx, [msgs[i]['distance'] for i in idx], [ref_d[i - 1] for i in idx],
                           a.top_k, tol)]
        bad_first = 0 in msgs and 'distance' in msgs[0]
        if reference:
            ridx = [i for i in range(n) if i in msgs and 'reference-distance' in msgs[i]]
            results.append(compare('reference-distance', ridx, [msgs[i]['reference-distance'] for i in ridx],
                                   [ref_rd[i] for i in ridx], a.top_k, tol))
            if len(ridx) != n:
                missing = missing or [i for i in range(n) if i not in ridx]
        if a.csv:
            with open(a.csv, 'w', newline='') as f:
                w = csv.writer(f)
                w.writerow(['frame', 'timestamp_ns', 'element_distance', 'reference_distance', 'abs_delta']
                           + (['element_reference_distance', 'reference_reference_distance', 'abs_delta_reference']
                              if reference else []))
                for i in range(n):
                    m = msgs.get(i, {})
                    ed = m.get('distance')
                    rd = float(ref_d[i - 1]) if i >= 1 else None
                    row = [i, m.get('timestamp', ''), '' if ed is None else repr(ed), '' if rd is None else repr(rd),
                           '' if ed is None or rd is None else repr(abs(ed - rd))]
                    if reference:
                        er = m.get('reference-distance')
                        rr = float(ref_rd[i])
                        row += ['' if er is None else repr(er), repr(rr), '' if er is None else repr(abs(er - rr))]
                    w.writerow(row)
            log(f'per-frame table: {a.csv}')

        ok = all(r['ok'] for r in results) and not missing and not bad_first
        summary.update(results=results, notes=notes, ok=ok, missing_frames=len(missing))
        print(f'video      {a.video}: {info["width"]}x{info["height"]}, {n} frames compared')
        print(f'model      {a.model} ({dtype}, {precision}, weights: {weights})')
        print(f'reference  dreamsim {dtype} from {a.cache_dir} (PyTorch {torch.__version__}, Pillow '
              f'{__import__("PIL").__version__})')
        print(f'time       decode {info["seconds"]:.1f}s, element {t_elem:.1f}s, reference {t_load:.1f}s load + '
              f'{t_ref:.1f}s ({a.threads} thread(s), batch {a.batch_size})')
        for r in results:
            k = min(a.top_k, r['frames_compared'])
            print(f'{r["quantity"]:<19} {r["frames_compared"]} frames: max |delta| {r["max_abs_delta"]:.3g} '
                  f'(frame {r["worst_frame"]}, relative {r["max_rel_delta"]:.2g}), mean |delta| {r["mean_abs_delta"]:.3g}, '
                  f'Spearman {r["spearman"]:.6f}, top-{k} same set: {"yes" if r[f"top{k}_same_set"] else "NO"} '
                  f'(same order: {"yes" if r[f"top{k}_same_order"] else "no"}); reference range '
                  f'{r["reference_range"][0]:.4g} .. {r["reference_range"][1]:.4g}' if r['reference_range'] else
                  f'{r["quantity"]}: nothing to compare')
            print(f'{"":<19} top-{k} element {r[f"top{k}_element"]}, reference {r[f"top{k}_reference"]}')
        for note in notes:
            print(f'note: {note}')
        if bad_first:
            print('FAIL: the element gave the first frame a distance (it has no previous frame)')
        if missing:
            print(f'FAIL: {len(missing)} frame(s) without the expected element message')
        print(('PASS' if ok else 'FAIL') + f': max |delta| ' +
              ', '.join(f'{r["quantity"]} {r["max_abs_delta"]:.3g}' for r in results) + f' (tolerance {tol:g})')
        if a.json:
            with open(a.json, 'w') as f:
                json.dump(summary, f, indent=1)
        return 0 if ok else 1
    except Fail as e:
        print(f'ERROR: {e}', file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
