#!/usr/bin/env python3
"""Throughput of the reference `dreamsim` package (PyTorch, fp32, CPU) on the frames the element sees.

    tools/.venv/bin/python tools/reference_bench.py VIDEO --type TYPE --cache-dir CHECKPOINTS \\
        [--threads N] [--batch-size B] [--frames N] [--csv distances.csv] [--json summary.json]

The counterpart of the element's benchmark (gst-dreamsim bench, cli/src/bench.rs), for issue #6: the same video, the same decoded
frames, the same number of threads and the same batch size, so that the two can be set side by side
(tools/bench_side_by_side.sh runs both).

What is timed (frames/s covers it, end to end; the stages run one after the other, nothing overlaps):
- decode: VIDEO decoded once with GStreamer exactly as tools/parity.py does it (its `decode`, imported:
  gst-launch-1.0 filesrc ! decodebin ! [identity eos-after] ! videoconvert ! video/x-raw,format=RGB ! filesink)
  into a temporary file of raw RGB frames: the same decoder and converter the element's pipeline runs. It includes
  the gst-launch-1.0 start-up (a few tenths of a second) and writing the file. It runs first, before torch is
  imported, so that the decode subprocess's peak memory is its own.
- preprocess: reading each frame's bytes back, PIL.Image.fromarray, the reference's own `preprocess` (PIL bicubic
  resize to 224x224 and ToTensor), and torch.cat of the batch.
- inference: `model.embed(batch)` in batches of --batch-size frames (the last one may be shorter), torch.no_grad().
- other: the rest of the wall time: the distance of frame i to frame i-1, 1 - cosine similarity of their
  embeddings (what `model(frame[i-1], frame[i])` returns and what the element posts as `distance`; frame 0 has
  none), and bookkeeping.
There is no warm-up run (nor is there one in the element's benchmark).

Not timed, printed on their own lines: importing torch and dreamsim, and the model load, `dreamsim(pretrained=True,
cache_dir=DIR, dreamsim_type=TYPE, device='cpu')` from dreamsim==0.2.1, fp32. Threads: OMP_NUM_THREADS and
MKL_NUM_THREADS are set to --threads before torch is imported, then torch.set_num_threads(N) and
torch.set_num_interop_threads(1).

Also printed: CPU time (user + system, resource.getrusage, this process and the decode subprocess) over the timed
stages divided by their wall time (cores busy on average); the peak resident memory of this process (ru_maxrss:
it includes the model load, as the element's VmHWM does) and, separately, of the decode subprocess.

Not measured: what the element does and the reference does not (metadata, bus messages), the Python start-up.
The element's benchmark, too, prints its model load apart (the element's `stats` give `load-time`) and leaves it
out of frames/s; both also give frames/s with the load counted. Whether the
distances agree with the element's is tools/parity.py's job; --csv writes this run's (frame, distance).

--frames N: decodes N + 4 frames and uses the first N. On GStreamer 1.22 `identity eos-after=N` does not pass
exactly N buffers (it drops buffer N, then lets a few later, non-consecutive buffers through before upstream
stops), so only a cut a few frames after N leaves the first N decoded frames intact (tools/parity.py does the same).
"""
import argparse
import csv
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity import Fail, decode, gst_env  # noqa: E402  (tools/parity.py: the same decoding as the parity check)

TYPES = ['ensemble', 'dino_vitb16', 'clip_vitb32', 'open_clip_vitb32', 'dinov2_vitb14', 'synclr_vitb16']


def log(msg):
    print(f'[reference_bench] {msg}', file=sys.stderr, flush=True)


def cpu_seconds():
    """user + system CPU seconds of this process and of its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


def decode_frames(video, frames, tmpdir):
    """Timed stage 1: decode VIDEO to raw RGB frames in tmpdir as tools/parity.py does; (info, frames used, s)."""
    rgb_path = os.path.join(tmpdir, 'frames.rgb')
    env = gst_env(None)
    t = time.perf_counter()
    info = decode(video, rgb_path, frames + 4 if frames else 0, env)
    if frames and info['frames'] < frames:  # the video is shorter than --frames + 4: all of it
        info = decode(video, rgb_path, 0, env)
    seconds = time.perf_counter() - t
    n = min(frames, info['frames']) if frames else info['frames']
    if n == 0:
        raise Fail(f'{video}: no frames decoded')
    info['path'] = rgb_path
    return info, n, seconds


def load_reference(a):
    """Not timed: import torch and dreamsim with --threads threads, load the model. (modules, model, preprocess)."""
    # OpenMP and MKL read these once, when torch is imported
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = str(a.threads)
    warnings.filterwarnings('ignore', category=FutureWarning)
    warnings.filterwarnings('ignore', message='.*weight_norm.*')
    warnings.filterwarnings('ignore', message='Already found a `peft_config` attribute')
    t = time.perf_counter()
    import torch
    from dreamsim import dreamsim
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    a.import_s = time.perf_counter() - t
    t = time.perf_counter()
    model, preprocess = dreamsim(pretrained=True, cache_dir=a.cache_dir, dreamsim_type=a.type, device='cpu')
    a.load_s = time.perf_counter() - t
    return torch, model, preprocess


def embed_all(torch, model, preprocess, info, n, batch_size):
    """Timed stage 2: preprocess, embed and distances of the first n frames; (distances, stage seconds, batches)."""
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image
    w, h, stride = info['width'], info['height'], info['stride']
    t_pre = t_inf = 0.0
    batches = 0
    dist = [None] * n  # frame 0 has no previous frame
    prev = None
    t0 = time.perf_counter()
    with open(info['path'], 'rb', buffering=0) as f, torch.no_grad():
        for s in range(0, n, batch_size):
            t = time.perf_counter()
            xs = []
            for _ in range(s, min(n, s + batch_size)):
                rows = np.frombuffer(f.read(info['frame_size']), dtype=np.uint8).reshape(h, stride)[:, :w * 3]
                xs.append(preprocess(Image.fromarray(np.ascontiguousarray(rows).reshape(h, w, 3), 'RGB')))
            x = torch.cat(xs)
            t1 = time.perf_counter()
            emb = model.embed(x)
            t2 = time.perf_counter()
            t_pre += t1 - t
            t_inf += t2 - t1
            batches += 1
            # distance of frame i to frame i-1, across batch boundaries: 1 - cos, as model(frame[i-1], frame[i])
            seq = emb if prev is None else torch.cat([prev, emb])
            first = s + 1 if prev is None else s
            for k, v in enumerate((1 - F.cosine_similarity(seq[:-1], seq[1:], dim=-1)).double().tolist()):
                dist[first + k] = v
            prev = emb[-1:]
            if batches == 1 or batches % 10 == 0:
                log(f'{min(n, s + batch_size)}/{n} frames ({time.perf_counter() - t0:.0f}s)')
    t_loop = time.perf_counter() - t0
    return dist, dict(preprocess=t_pre, inference=t_inf, other=max(0.0, t_loop - t_pre - t_inf)), batches


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n', 2)[2])
    ap.add_argument('video', help='any video file GStreamer can decode')
    ap.add_argument('--type', default='ensemble', choices=TYPES,
                    help='DreamSim type (dreamsim_type) of the reference model (default %(default)s)')
    ap.add_argument('--cache-dir', required=True,
                    help='the reference package\'s checkpoint cache (cache_dir): real checkpoints, or a random-weight '
                         'folder made by tools/make_random_checkpoints.py')
    ap.add_argument('--threads', type=int, default=max(1, os.cpu_count() or 1),
                    help='PyTorch intra-op threads (torch.set_num_threads, OMP/MKL_NUM_THREADS); give the element\'s '
                         '`threads` (default: the number of CPUs, %(default)s)')
    ap.add_argument('--batch-size', type=int, default=8,
                    help='frames per model.embed call, as the element\'s batch-size (default %(default)s)')
    ap.add_argument('--frames', type=int, default=0, help='only the first N decoded frames (default: all)')
    ap.add_argument('--csv', help='write frame index and distance to the previous frame here')
    ap.add_argument('--json', help='write the figures here (what tools/bench_side_by_side.sh reads)')
    a = ap.parse_args(argv)

    if a.threads < 1 or a.batch_size < 1 or a.frames < 0:
        ap.error('--threads and --batch-size must be >= 1, --frames >= 0')
    if shutil.which('gst-launch-1.0') is None:
        print('ERROR: gst-launch-1.0 not found (apt-get install gstreamer1.0-tools)', file=sys.stderr)
        return 2
    for path, what in ((a.video, 'video'), (a.cache_dir, '--cache-dir')):
        if not os.path.exists(path):
            print(f'ERROR: {what} {path} does not exist', file=sys.stderr)
            return 2
    a.cache_dir = os.path.abspath(a.cache_dir)
    random_cache = os.path.exists(os.path.join(a.cache_dir, 'RANDOM_WEIGHTS_README.txt'))

    tmpdir = tempfile.mkdtemp(prefix='dreamsim-refbench-')
    try:
        # Decode first, before torch is imported: a child process spawned later would count this process's
        # resident pages in its own peak (ru_maxrss of the children).
        cpu0 = cpu_seconds()
        info, n, t_decode = decode_frames(os.path.abspath(a.video), a.frames, tmpdir)
        cpu1 = cpu_seconds()
        peak_dec_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        log(f'decoded {info["frames"]} frames {info["width"]}x{info["height"]} in {t_decode:.2f}s; using {n}')

        torch, model, preprocess = load_reference(a)
        log(f'imports {a.import_s:.1f}s, model {a.type} loaded in {a.load_s:.1f}s from {a.cache_dir} '
            f'({"RANDOM weights" if random_cache else "real checkpoints"}); torch threads {torch.get_num_threads()}, '
            f'interop {torch.get_num_interop_threads()}')

        cpu2 = cpu_seconds()
        dist, stage, batches = embed_all(torch, model, preprocess, info, n, a.batch_size)
        cpu3 = cpu_seconds()
    except Fail as e:
        print(f'ERROR: {e}', file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    stage['decode'] = t_decode
    wall = t_decode + stage['preprocess'] + stage['inference'] + stage['other']
    cpu_decode = cpu1[1] - cpu0[1]
    cpu = (cpu1[0] - cpu0[0]) + cpu_decode + (cpu3[0] - cpu2[0])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per = {k: v * 1000.0 / n for k, v in stage.items()}
    import PIL

    # Printed in the shape of gst-dreamsim bench's report.
    print(f'decode: {info["frames"]} frames {info["width"]}x{info["height"]} in {t_decode:.2f} s '
          f'({info["frames"] / t_decode:.1f} frames/s; gst-launch-1.0 to a raw RGB file, start-up included; '
          f'the first {n} used)')
    print(f'reference dreamsim {a.type} (PyTorch {torch.__version__} fp32, cpu, {torch.get_num_threads()} threads, '
          f'batch {a.batch_size}; dreamsim 0.2.1 from {a.cache_dir}{", RANDOM weights" if random_cache else ""}):')
    print(f'  model load {a.load_s:.2f} s (not counted in frames/s; importing torch and dreamsim {a.import_s:.2f} s)')
    print(f'  {n} frames in {wall:.2f} s: {n / wall:.2f} frames/s (model ran on {n} frames, {batches} batches)')
    print(f'  per frame: decode {per["decode"]:.1f} ms (in the run), preprocess {per["preprocess"]:.1f} ms, '
          f'inference {per["inference"]:.1f} ms, other {per["other"]:.1f} ms')
    print(f'  CPU {cpu:.1f} s = {cpu / wall:.2f} cores busy on average (decode subprocess {cpu_decode:.1f} s of it)')
    print(f'  with the model load counted: {n} frames in '
          f'{wall + a.load_s:.2f} s: {n / (wall + a.load_s):.2f} frames/s')
    print(f'peak resident memory of the process: {peak_kib // 1024} MiB '
          f'(decode subprocess, separate: {peak_dec_kib // 1024} MiB)')

    if a.csv:
        with open(a.csv, 'w', newline='') as f:
            wr = csv.writer(f)
            wr.writerow(['frame', 'distance'])
            for i, v in enumerate(dist):
                wr.writerow([i, '' if v is None else repr(v)])
        log(f'distances: {a.csv}')
    if a.json:
        summary = dict(video=os.path.abspath(a.video), type=a.type, cache_dir=a.cache_dir,
                       random_weights=random_cache, torch=torch.__version__, pillow=PIL.__version__,
                       threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
                       batch_size=a.batch_size, width=info['width'], height=info['height'], frames=n,
                       frames_decoded=info['frames'], batches=batches, import_s=a.import_s, load_s=a.load_s,
                       wall_s=wall, frames_per_s=n / wall, frames_per_s_with_load=n / (wall + a.load_s),
                       **{f'{k}_s': v for k, v in stage.items()}, **{f'{k}_ms_per_frame': v for k, v in per.items()},
                       cpu_s=cpu, cpu_decode_s=cpu_decode, cores_busy=cpu / wall,
                       peak_rss_mib=peak_kib / 1024, peak_rss_decode_mib=peak_dec_kib / 1024)
        with open(a.json, 'w') as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
