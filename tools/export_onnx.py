#!/usr/bin/env python3
"""Export DreamSim (the reference package dreamsim==0.2.1) to ONNX for gst-dreamsim, and verify it.

For each requested type this script
  1. makes sure the reference checkpoints are in --checkpoint-dir (the reference package downloads its checkpoint
     zip itself when they are missing; the DINO / DINOv2 backbones also come through torch.hub),
  2. loads the reference model with dreamsim.dreamsim(pretrained=True, ...), a peft LoRA model, and computes the
     reference embeddings and distances with it (unmerged, as the reference package runs it) on real photographs
     and random images, preprocessed by the reference package's own `preprocess`,
  3. merges the LoRA weights with peft (W += (lora_alpha / r) * B @ A on every attn.qkv), checking the merge
     against that formula,
  4. rebuilds the merged network as a clean torch module (no hooks, no .squeeze(), no torchvision Normalize) that
     reproduces the reference's embedding, and exports it with torch.onnx.export (TorchScript exporter, dynamic
     batch, opset 17 by default) per the gst-dreamsim ONNX contract:
        input  `image`     float32 [N, 3, 224, 224], RGB in [0, 1] (per-backbone mean/std normalisation in the graph)
        output `embedding` float32 [N, D], centred (minus its mean over D) and L2-normalised
        metadata_props     dreamsim.type, dreamsim.input_size, dreamsim.embedding_dim, dreamsim.precision, ...
     (--fp16: a copy whose backbones run in fp16, converted from that graph; input and output stay float32),
  5. runs each ONNX model with ONNX Runtime (CPU) on the SAME tensors and compares embeddings and whole distances
     with the reference's, and
  6. only if every figure is within tolerance, moves the model into --output-dir as <type>.onnx (fp16 copies:
     <type>-fp16.onnx) with a <file>.sha256 beside it. A model that disagrees is never written.

A model that is already in place, intact (sha256) and exported from the same checkpoints by the same exporter is
left alone, so running this twice does no work twice (--force redoes it).

Offline use: point --checkpoint-dir at a folder of RANDOM weights made by tools/make_random_checkpoints.py;
everything else is the same code path. Such models are marked dreamsim.weights=random-offline-cache, and are only
written to an --output-dir given explicitly (never to the default place the element loads from).

Exit status: 0 ok, 1 other error, 2 usage, 3 checkpoints unavailable (offline / download failed),
4 disk full or not writable, 5 verification failed.
"""
import argparse
import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

EXPORTER_VERSION = '1'
REFERENCE_VERSION = '0.2.1'
INPUT_SIZE = 224
DEFAULT_OPSET = 17

# type -> (backbones, DINOv2 needs its hub code). Order of backbones = order of the reference's concatenation.
TYPES = {
    'ensemble': ['dino_vitb16', 'clip_vitb16', 'open_clip_vitb16'],
    'dino_vitb16': ['dino_vitb16'],
    'clip_vitb32': ['clip_vitb32'],
    'open_clip_vitb32': ['open_clip_vitb32'],
    'synclr_vitb16': ['synclr_vitb16'],
    'dinov2_vitb14': ['dinov2_vitb14'],
}
DEFAULT_TYPES = ['ensemble']
ALL_TYPES = ['ensemble', 'dino_vitb16', 'clip_vitb32', 'open_clip_vitb32', 'synclr_vitb16', 'dinov2_vitb14']
EMBED_DIM = {'dino_vitb16': 768, 'dinov2_vitb14': 768, 'synclr_vitb16': 768, 'clip_vitb16': 512,
             'open_clip_vitb16': 512, 'clip_vitb32': 512, 'open_clip_vitb32': 512}

# Files the reference reads for each backbone, relative to the checkpoint dir (used for provenance hashes and
# for saying what will be downloaded from where). dreamsim's torch.hub.set_dir(cache_dir) puts hub code and
# hub weights in the same dir.
HUB = {
    'dino_vitb16': ('facebookresearch_dino_main', 'checkpoints/dino_vitbase16_pretrain.pth'),
    'dinov2_vitb14': ('facebookresearch_dinov2_main', 'checkpoints/dinov2_vitb14_pretrain.pth'),
}
BACKBONE_FILES = {
    'dino_vitb16': ['dino_vitb16_pretrain.pth'],
    'dinov2_vitb14': ['dinov2_vitb14_pretrain.pth'],
    'clip_vitb16': ['clip_vitb16_pretrain.pth.tar'], 'open_clip_vitb16': ['open_clip_vitb16_pretrain.pth.tar'],
    'clip_vitb32': ['clip_vitb32_pretrain.pth.tar'], 'open_clip_vitb32': ['open_clip_vitb32_pretrain.pth.tar'],
    'synclr_vitb16': ['synclr_vit_b_16.pth'],
}
RANDOM_MARKER = 'RANDOM_WEIGHTS_README.txt'  # written by tools/make_random_checkpoints.py

# Tolerances (max |delta| against the reference PyTorch model, fp32 reference on CPU).
TOL = {'fp32': {'embedding': 1e-5, 'distance': 1e-6}, 'fp16': {'embedding': 5e-3, 'distance': 5e-3}}

# Photographs shipped in the scikit-image wheel (skimage/data), used as real images for verification.
REAL_IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'logo.png', 'camera.png',
               'hubble_deep_field.jpg', 'motorcycle_left.png', 'retina.jpg', 'coins.png']

EXIT_OTHER, EXIT_USAGE, EXIT_CHECKPOINTS, EXIT_DISK, EXIT_VERIFY = 1, 2, 3, 4, 5


class Fail(Exception):
    def __init__(self, msg, code=EXIT_OTHER):
        super().__init__(msg)
        self.code = code


def log(msg):
    print(f'[export] {msg}', flush=True)


def xdg(var, fallback):
    v = os.environ.get(var)  # as the element reads it (src/paths.rs): used when set and not empty
    return v if v else os.path.join(os.path.expanduser('~'), fallback)


def default_output_dir():
    """Where the element loads its default model from: $GST_DREAMSIM_MODEL_DIR, else
    ${XDG_DATA_HOME:-~/.local/share}/gst-dreamsim/models (src/paths.rs)."""
    return os.environ.get('GST_DREAMSIM_MODEL_DIR') or \
        os.path.join(xdg('XDG_DATA_HOME', '.local/share'), 'gst-dreamsim', 'models')


def default_checkpoint_dir():
    return os.path.join(xdg('XDG_CACHE_HOME', '.cache'), 'gst-dreamsim', 'checkpoints')


def sha256_file(path, bufsize=1 << 20):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(bufsize), b''):
            h.update(chunk)
    return h.hexdigest()


def free_bytes(path):
    while not os.path.exists(path):
        path = os.path.dirname(path) or '.'
    return shutil.disk_usage(path).free


def need_space(path, nbytes, what):
    free = free_bytes(path)
    if free < nbytes:
        raise Fail(f'not enough disk space for {what}: {free / 2**30:.1f} GiB free in {path}, '
                   f'about {nbytes / 2**30:.1f} GiB needed. Free some space (or choose another directory) and '
                   're-run.', EXIT_DISK)


@contextlib.contextmanager
def disk_errors(what):
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise Fail(f'disk full while {what}: {e}. Free some space and re-run.', EXIT_DISK) from e
        if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise Fail(f'cannot write while {what}: {e}', EXIT_DISK) from e
        raise


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints: the reference's own download path, with clear messages and an interrupted-unzip repair.
# ---------------------------------------------------------------------------------------------------------------

def check_online(url, what):
    host = urllib.parse.urlsplit(url).netloc
    try:
        urllib.request.urlopen(urllib.request.Request(url, method='HEAD'), timeout=20).close()
    except urllib.error.HTTPError:
        return  # the host answered: we are online (the real request may still redirect or fail, and says so)
    except (urllib.error.URLError, OSError) as e:
        raise Fail(f'offline? cannot reach {host} to download {what} ({getattr(e, "reason", e)}).\n'
                   f'  Run this on a machine with internet access, or copy a checkpoint directory made there into '
                   f'--checkpoint-dir.\n  For tests without network, write a RANDOM-weight folder with '
                   f'tools/make_random_checkpoints.py CKPT_DIR and pass --checkpoint-dir CKPT_DIR '
                   f'--output-dir DIR.', EXIT_CHECKPOINTS) from e


def finish_zip(cache_dir, dtype):
    """Check that the reference's pretrained.zip was extracted completely (re-extract if not), keep a manifest."""
    zpath = os.path.join(cache_dir, 'pretrained.zip')
    if not os.path.exists(zpath):
        return
    log(f'checking the checkpoint archive {zpath}')
    try:
        with zipfile.ZipFile(zpath) as z:
            bad = z.testzip()
            if bad:
                raise zipfile.BadZipFile(f'corrupt member {bad}')
            members = [i for i in z.infolist() if not i.is_dir()]
            incomplete = [i.filename for i in members
                          if not os.path.isfile(os.path.join(cache_dir, i.filename))
                          or os.path.getsize(os.path.join(cache_dir, i.filename)) != i.file_size]
            if incomplete:
                log(f'  {len(incomplete)} file(s) missing or truncated (interrupted unzip?): extracting again')
                with disk_errors(f'unzipping {zpath}'):
                    z.extractall(cache_dir)
    except zipfile.BadZipFile as e:
        os.remove(zpath)
        raise Fail(f'the downloaded checkpoint archive was corrupt ({e}); removed it: re-run to download again.',
                   EXIT_CHECKPOINTS) from e
    digest = sha256_file(zpath)
    manifest = {'type': dtype, 'zip_sha256': digest,
                'files': {i.filename: i.file_size for i in members}}
    with open(os.path.join(cache_dir, f'gst-dreamsim-{dtype}-checkpoint.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    os.remove(zpath)
    log(f'  archive complete (sha256 {digest}); extracted and removed')


def check_manifest(cache_dir, dtype):
    """Files extracted from a checkpoint archive we downloaded must still have their sizes; else download again."""
    path = os.path.join(cache_dir, f'gst-dreamsim-{dtype}-checkpoint.json')
    if not os.path.isfile(path):
        return
    with open(path) as f:
        files = json.load(f).get('files', {})
    bad = [r for r, size in files.items() if not os.path.isfile(os.path.join(cache_dir, r))
           or os.path.getsize(os.path.join(cache_dir, r)) != size]
    if bad:
        log(f'{len(bad)} {dtype} checkpoint file(s) missing or truncated ({", ".join(bad[:3])}): removing the '
            'archive\'s files to download it again')
        for r in files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(cache_dir, r))
        os.remove(path)


def ensure_checkpoints(dtype, cache_dir, allow_download):
    """The reference's download_weights(), made loud: offline and disk checks before it downloads anything."""
    import torch
    from dreamsim import model as ds_model
    from dreamsim.config import dreamsim_weights
    with disk_errors(f'creating {cache_dir}'):
        os.makedirs(cache_dir, exist_ok=True)
    finish_zip(cache_dir, dtype)  # leftover of an interrupted run
    check_manifest(cache_dir, dtype)
    real_download = torch.hub.download_url_to_file

    def download(url, dst, *a, **kw):
        if not allow_download:
            raise Fail(f'the {dtype} checkpoints are not in {cache_dir} and downloads are disabled (--no-download).',
                       EXIT_CHECKPOINTS)
        check_online(url, f'the DreamSim {dtype} checkpoint')
        need_space(cache_dir, 3 * 2**30 if dtype == 'ensemble' else 2**30 + 2**29, 'the checkpoint download')
        log(f'downloading {url}\n          -> {dst}')
        with disk_errors(f'downloading {url}'):
            real_download(url, dst, *a, **kw)
        log(f'  downloaded {os.path.getsize(dst) / 2**20:.0f} MiB; unzipping')

    torch.hub.download_url_to_file = download
    try:
        with disk_errors(f'unzipping into {cache_dir}'):
            ds_model.download_weights(cache_dir=cache_dir, dreamsim_type=dtype)
    except Fail:
        raise
    except (urllib.error.URLError, OSError) as e:
        raise Fail(f'downloading the {dtype} checkpoint ({dreamsim_weights[dtype]}) failed: {e}',
                   EXIT_CHECKPOINTS) from e
    finally:
        torch.hub.download_url_to_file = real_download
    finish_zip(cache_dir, dtype)
    # torch.hub code and weights (DINO, DINOv2) are fetched later by the reference, when it builds the model.
    for bb in TYPES[dtype]:
        if bb in HUB:
            repo, weights = HUB[bb]
            if not os.path.isfile(os.path.join(cache_dir, repo, 'hubconf.py')):
                if not allow_download:
                    raise Fail(f'{bb}: torch.hub code {repo} is not in {cache_dir} (--no-download).',
                               EXIT_CHECKPOINTS)
                check_online('https://github.com/', f'the {bb} torch.hub code')
                log(f'{bb}: torch.hub will download its model code from github.com')
            if not os.path.isfile(os.path.join(cache_dir, weights)):
                if not allow_download:
                    raise Fail(f'{bb}: torch.hub weights {weights} are not in {cache_dir} (--no-download).',
                               EXIT_CHECKPOINTS)
                check_online('https://dl.fbaipublicfiles.com/', f'the {bb} backbone weights')
                need_space(cache_dir, 2**30, f'the {bb} backbone weights')
                log(f'{bb}: torch.hub will download its weights from dl.fbaipublicfiles.com')


def lora_dir(dtype):
    return 'ensemble_lora' if dtype == 'ensemble' else f'{TYPES[dtype][0]}_single_lora'


def checkpoint_files(dtype, cache_dir):
    rel = [f'{lora_dir(dtype)}/adapter_config.json', f'{lora_dir(dtype)}/adapter_model.bin']
    for bb in TYPES[dtype]:
        rel += BACKBONE_FILES[bb]
        if bb in HUB:
            rel += [f'{HUB[bb][0]}/hubconf.py', HUB[bb][1]]
    # newer peft versions save adapter_model.safetensors instead of .bin: take whichever is there
    out = []
    for r in rel:
        if r.endswith('adapter_model.bin') and not os.path.exists(os.path.join(cache_dir, r)):
            r = r[:-len('.bin')] + '.safetensors'
        out.append(r)
    return out


def checkpoint_hashes(dtype, cache_dir):
    """{relative path: sha256} of every checkpoint file the reference reads for dtype; None if one is missing."""
    out = {}
    for r in checkpoint_files(dtype, cache_dir):
        p = os.path.join(cache_dir, r)
        if not os.path.isfile(p):
            return None
        out[r] = sha256_file(p)
    return out


def weights_kind(cache_dir):
    return 'random-offline-cache' if os.path.exists(os.path.join(cache_dir, RANDOM_MARKER)) else 'official'


# ---------------------------------------------------------------------------------------------------------------
# The reference model, the LoRA merge, and the clean module.
# ---------------------------------------------------------------------------------------------------------------

def load_reference(dtype, cache_dir):
    import torch
    from dreamsim import dreamsim
    try:
        model, preprocess = dreamsim(pretrained=True, device='cpu', cache_dir=cache_dir, normalize_embeds=True,
                                     dreamsim_type=dtype)
    except (urllib.error.URLError, ConnectionError) as e:
        raise Fail(f'the reference could not fetch a {dtype} backbone through torch.hub: {e}', EXIT_CHECKPOINTS) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        if 'PytorchStreamReader' in str(e) or isinstance(e, (EOFError, zipfile.BadZipFile)):
            raise Fail(f'a checkpoint in {cache_dir} is truncated or corrupt ({e}). Delete the {dtype} files '
                       f'there (or the whole directory) and re-run to download them again.', EXIT_CHECKPOINTS) from e
        raise
    model.eval().requires_grad_(False)
    torch.set_grad_enabled(False)
    return model, preprocess


def merge_lora(ref, log_fn=log):
    """Merge the LoRA adapters with peft; check every merged qkv against W + (lora_alpha / r) * B @ A.

    Merges IN PLACE (the DINO head's weight_norm cannot be deep-copied): run the reference first.
    Returns (merged PerceptualModel, summary string)."""
    import torch
    from peft.tuners.lora import LoraLayer
    cfg = ref.peft_config['default']
    for k, bad in (('use_dora', True), ('use_rslora', True), ('fan_in_fan_out', True)):
        if getattr(cfg, k, False) == bad:
            raise Fail(f'adapter_config.json has {k}={bad}: not the LoRA the reference DreamSim checkpoints use')
    scaling = cfg.lora_alpha / cfg.r
    expect, names = {}, []
    for name, mod in ref.named_modules():
        if isinstance(mod, LoraLayer):
            if not name.endswith('attn.qkv'):
                raise Fail(f'unexpected LoRA target {name} (DreamSim adapts attn.qkv only)')
            if abs(mod.scaling['default'] - scaling) > 1e-12:
                raise Fail(f'peft scaling {mod.scaling["default"]} != lora_alpha / r = {scaling} at {name}')
            w = mod.get_base_layer().weight
            expect[name.split('base_model.model.', 1)[-1]] = (
                w.double() + scaling * (mod.lora_B['default'].weight.double() @ mod.lora_A['default'].weight.double()))
            names.append(name)
    if not names:
        raise Fail('no LoRA layers found in the reference model')
    merged = ref.merge_and_unload()  # in place: the reference's figures must be computed before this
    merged.eval().requires_grad_(False)
    worst = 0.0
    mods = dict(merged.named_modules())
    for name, e in expect.items():
        m = mods[name]
        if not isinstance(m, torch.nn.Linear):
            raise Fail(f'{name} is not a plain Linear after merge_and_unload')
        worst = max(worst, (m.weight.double() - e).abs().max().item())
    if worst > 1e-6:
        raise Fail(f'peft merge differs from W + (alpha/r) B A by {worst:.3g}')
    summary = f'r={cfg.r},alpha={cfg.lora_alpha},scaling={scaling:g},layers={len(names)}'
    log_fn(f'LoRA merged: {len(names)} attn.qkv layers, r={cfg.r}, lora_alpha={cfg.lora_alpha}, '
           f'scaling={scaling:g}; max |merged - (W + scaling*B@A)| = {worst:.2g}')
    return merged, summary


def build_clean(merged, dtype):
    """The clean export module, built from the merged reference modules (their tensors are reused, not copied)."""
    import torch
    from torch import nn

    class QuickGELU(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(1.702 * x)

    class Block(nn.Module):
        """DINO's ViT block (dreamsim/feature_extraction/vision_transformer.py): same ops, same order. Also DINOv2's
        (LayerScale ls1/ls2 on both residual branches; its attention runs as SDPA in torch, explicitly here)."""

        def __init__(self, blk, tokens):
            super().__init__()
            a = blk.attn
            for m in blk.modules():  # dropout / drop-path are off in eval mode, as in the reference
                assert not m.training, f'{type(m).__name__} in training mode'
            self.norm1, self.qkv, self.proj, self.norm2 = blk.norm1, a.qkv, a.proj, blk.norm2
            if not (hasattr(blk.mlp, 'fc1') and hasattr(blk.mlp, 'fc2')):
                raise Fail(f'unsupported MLP {type(blk.mlp).__name__}')
            self.fc1, self.fc2 = blk.mlp.fc1, blk.mlp.fc2
            act = blk.mlp.act
            if type(act).__name__ == 'QuickGELU':
                self.act = QuickGELU()
            elif isinstance(act, nn.GELU) and act.approximate == 'none':
                self.act = nn.GELU()
            else:
                raise Fail(f'unsupported activation {act!r}')
            for i in (1, 2):  # DINOv2 LayerScale: x * gamma
                ls = getattr(blk, f'ls{i}', None)
                if ls is not None and not isinstance(ls, nn.Identity):
                    self.register_buffer(f'gamma{i}', ls.gamma.detach().clone())
                else:
                    setattr(self, f'gamma{i}', None)
            self.heads, self.scale, self.tokens = a.num_heads, a.scale, tokens
            self.dim = self.qkv.in_features
            self.head_dim = self.dim // self.heads

        def forward(self, x):
            qkv = self.qkv(self.norm1(x)).reshape(-1, self.tokens, 3, self.heads, self.head_dim)
            qkv = qkv.permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = attn.softmax(dim=-1)
            y = self.proj((attn @ v).transpose(1, 2).reshape(-1, self.tokens, self.dim))
            x = x + (y if self.gamma1 is None else y * self.gamma1)
            y = self.fc2(self.act(self.fc1(self.norm2(x))))
            return x + (y if self.gamma2 is None else y * self.gamma2)

    class Branch(nn.Module):
        """One backbone: normalise, patchify, [CLS] + pos, (CLIP: ln_pre), blocks, then the reference's feature:
        'cls' = [CLS] of the last block output before the final LayerNorm (DINO, SynCLR),
        'embedding' = LN_post([CLS]) @ proj (CLIP, OpenCLIP)."""

        def __init__(self, extractor, feat, mean, std):
            super().__init__()
            vit = extractor.model
            if not (hasattr(vit, 'prepare_tokens') or hasattr(vit, 'prepare_tokens_with_masks')):
                raise Fail(f'{type(vit).__name__}: not the DINO-style ViT the clean module reproduces')
            if getattr(vit, 'register_tokens', None) is not None:
                raise Fail('register tokens are not supported')
            if not isinstance(getattr(vit.patch_embed, 'norm', nn.Identity()), nn.Identity):
                raise Fail('a patch-embedding norm is not supported')
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
            self.patch = vit.patch_embed.proj
            assert isinstance(self.patch, nn.Conv2d)
            grid = [(INPUT_SIZE - k) // s + 1 for k, s in zip(self.patch.kernel_size, self.patch.stride)]
            tokens = grid[0] * grid[1] + 1
            self.cls_token = vit.cls_token
            # the reference computes this every call from constants; for a 224x224 input it is fixed
            dummy = torch.zeros(1, tokens, vit.embed_dim)
            self.register_buffer('pos_embed', vit.interpolate_pos_encoding(dummy, INPUT_SIZE, INPUT_SIZE).detach()
                                 .clone())
            assert self.pos_embed.shape == (1, tokens, vit.embed_dim), self.pos_embed.shape
            pos_drop = getattr(vit, 'pos_drop', None)  # DINOv2 has none
            if isinstance(pos_drop, nn.LayerNorm):
                self.ln_pre = pos_drop  # CLIP's ln_pre, after the position embedding
            else:
                assert pos_drop is None or isinstance(pos_drop, nn.Dropout) and not pos_drop.training
                self.ln_pre = None
            self.blocks = nn.ModuleList(Block(b, tokens) for b in vit.blocks)
            self.feat = feat
            if feat == 'embedding':
                self.norm = vit.norm
                self.register_buffer('proj', extractor.proj.detach().clone())
            elif feat != 'cls':
                raise Fail(f'feature type {feat} not supported')

        def normalise(self, x):
            # torchvision Normalize: (x - mean) / std, as sub then div, in fp32
            return (x - self.mean) / self.std

        def features(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            x = x + self.pos_embed
            if self.ln_pre is not None:
                x = self.ln_pre(x)
            for blk in self.blocks:
                x = blk(x)
            cls = x[:, 0]
            if self.feat == 'embedding':
                return self.norm(cls) @ self.proj
            return cls

        def forward(self, x):
            return self.features(self.normalise(x))

    class DreamSimONNX(nn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, image):
            feats = [b(image) for b in self.branches]
            e = torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]
            # centre and L2-normalise (the reference's normalize_embedding) in float64, rounded once to float32:
            # fp32 reductions over D values leave |norm - 1| ~ 4e-7, which 1 - dot(a, b) would see directly
            e = e.double()
            e = e - e.mean(dim=1, keepdim=True)
            return (e / torch.linalg.vector_norm(e, dim=1, keepdim=True)).float()

    pm = merged  # PerceptualModel after merge_and_unload
    if not isinstance(pm.mlp, nn.Identity):
        raise Fail('the reference model has an MLP head: not a LoRA DreamSim model')
    if not pm.normalize_embeds or pm.is_patch:
        raise Fail('expected normalize_embeds=True and CLS features')
    branches = []
    for i, (bb, feat) in enumerate(zip(pm.model_list, pm.feat_type_list)):
        if bb != TYPES[dtype][i]:
            raise Fail(f'reference backbone {i} is {bb}, expected {TYPES[dtype][i]}')
        branches.append(Branch(pm.extractor_list[i], feat, pm._get_mean(bb), pm._get_std(bb)))
    return DreamSimONNX(branches).eval()


def convert_fp16(model):
    """The fp16 copy, made from the exported fp32 graph (in place): every backbone node (ONNX scope /branches.i/,
    except the normalisation /branches.i/Sub and /Div) computes in fp16 with fp16 weights; the float32 input, the
    normalisation and the embedding arithmetic (concatenate, centre, L2-normalise) stay fp32, with Casts at the
    boundaries. This is the graph torch.onnx.export gives for the same module with .half() backbones (checked:
    identical outputs), without tracing fp16 on the CPU, which takes minutes for the ensemble."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = model.graph
    norm_re = re.compile(r'^/branches\.\d+/(Sub|Div)$')
    in_r = [n.name.startswith('/branches.') and not norm_re.match(n.name) for n in g.node]
    norm_nodes = [n for n in g.node if norm_re.match(n.name)]
    if not norm_nodes or any(n.op_type == 'Sub' and n.input[0] != 'image' for n in norm_nodes):
        raise Fail('fp16: unexpected graph layout (normalisation nodes not found)')
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(g.input) + list(g.output)}
    inits = {i.name: i for i in g.initializer}
    for name, init in inits.items():
        types[name] = init.data_type
    consumers_out = set()  # tensors consumed by nodes outside R, or graph outputs
    for n, r in zip(g.node, in_r):
        if not r:
            consumers_out.update(n.input)
    consumers_out.update(o.name for o in g.output)
    produced_r = set()
    for n, r in zip(g.node, in_r):
        if r:
            produced_r.update(n.output)
    F, H = TensorProto.FLOAT, TensorProto.FLOAT16
    # initializers used inside R
    init_r = {t for n, r in zip(g.node, in_r) if r for t in n.input if t in inits}
    renamed_init = {}
    for t in sorted(init_r):
        init = inits[t]
        if init.data_type != F:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        if t in consumers_out:  # shared with an fp32 node: add an fp16 twin
            new = numpy_helper.from_array(arr, t + '_fp16')
            g.initializer.append(new)
            renamed_init[t] = new.name
        else:
            init.CopyFrom(numpy_helper.from_array(arr, t))
    # boundary tensors into R (produced outside R, float) and out of R (produced in R, float, used outside)
    to16, to32 = {}, {}
    for n, r in zip(g.node, in_r):
        if not r:
            continue
        for i, t in enumerate(n.input):
            if t in renamed_init:
                n.input[i] = renamed_init[t]
            elif t and t not in produced_r and t not in inits and types.get(t) == F:
                to16.setdefault(t, t + '_fp16')
                n.input[i] = to16[t]
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value' and a.t.data_type == F:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        elif n.op_type == 'ConstantOfShape':
            for a in n.attribute:
                if a.name == 'value' and a.t.data_type == F:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        elif n.op_type == 'Cast':
            for a in n.attribute:
                if a.name == 'to' and a.i == F:
                    a.i = H
        for o in n.output:
            if o in consumers_out and types.get(o) == F:
                to32[o] = o + '_fp32'
    graph_inputs = {i.name for i in g.input}
    nodes = [helper.make_node('Cast', [t], [t16], name=f'/fp16/Cast_in_{t}', to=H)
             for t, t16 in to16.items() if t in inits or t in graph_inputs]
    for n, r in zip(g.node, in_r):
        if not r:
            for i, t in enumerate(n.input):
                if t in to32:
                    n.input[i] = to32[t]
        nodes.append(n)
        for o in n.output:
            if o in to16:
                nodes.append(helper.make_node('Cast', [o], [to16[o]], name=f'/fp16/Cast_in_{o}', to=H))
            if o in to32:
                nodes.append(helper.make_node('Cast', [o], [to32[o]], name=f'/fp16/Cast_out_{o}', to=F))
    if any(o.name in to32 for o in g.output) or not to32:
        raise Fail('fp16: unexpected graph layout (no fp16 -> fp32 boundary before the output)')
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    return model


# ---------------------------------------------------------------------------------------------------------------
# Export and verification.
# ---------------------------------------------------------------------------------------------------------------

def export_onnx(module, path, opset):
    import torch
    dummy = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    kw = dict(input_names=['image'], output_names=['embedding'],
              dynamic_axes={'image': {0: 'N'}, 'embedding': {0: 'N'}}, opset_version=opset,
              do_constant_folding=True)
    if 'dynamo' in torch.onnx.export.__code__.co_varnames:
        kw['dynamo'] = False  # the TorchScript exporter; newer torch defaults to dynamo
    with disk_errors(f'writing {path}'):
        torch.onnx.export(module, (dummy,), path, **kw)


def finalize_onnx(m, meta, path):
    """Set metadata_props and the contract's input/output shapes on ModelProto m, check, save to path."""
    import onnx
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    m.producer_name = 'gst-dreamsim tools/export_onnx.py'
    m.producer_version = EXPORTER_VERSION
    m.doc_string = (f'DreamSim {meta["dreamsim.type"]} (reference dreamsim=={REFERENCE_VERSION}, '
                    f'weights: {meta["dreamsim.weights"]}, {meta["dreamsim.precision"]}). Input image float32 '
                    '[N,3,224,224] RGB in [0,1] after PIL resize((224,224), BICUBIC); output embedding float32 [N,D], '
                    'centred, L2-normalised; distance = 1 - dot(a, b).')
    g = m.graph
    inits = {i.name for i in g.initializer}
    ins = [i for i in g.input if i.name not in inits]
    if [i.name for i in ins] != ['image'] or [o.name for o in g.output] != ['embedding']:
        raise Fail(f'graph inputs/outputs are {[i.name for i in ins]} / {[o.name for o in g.output]}')

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    if dims(ins[0]) != ['N', 3, INPUT_SIZE, INPUT_SIZE] or ins[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise Fail(f'input image has shape {dims(ins[0])}')
    out = g.output[0]
    # the tracer cannot always name the feature dimension (e.g. after a [CLS] slice): state the contract's shape
    od = out.type.tensor_type.shape.dim
    if len(od) == 2:
        od[0].dim_param = 'N'
        od[1].Clear()
        od[1].dim_value = int(meta['dreamsim.embedding_dim'])
    if dims(out) != ['N', int(meta['dreamsim.embedding_dim'])] or \
            out.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise Fail(f'output embedding has shape {dims(out)}')
    with disk_errors(f'writing {path}'):
        onnx.save_model(m, path)
    onnx.checker.check_model(path)


def contract_preprocess(pil_img):
    """The contract's input for one picture, float32 [1, 3, 224, 224]: the reference package's `preprocess`
    (dreamsim/model.py: convert('RGB'), torchvision Resize((224, 224), BICUBIC) on the PIL image, ToTensor), built
    without loading a model, for the tools that start from an exported model (tools/quantize_int8.py).
    process_type checks it against the reference's own function on every export."""
    from torchvision import transforms
    t = transforms.Compose([transforms.Resize((INPUT_SIZE, INPUT_SIZE),
                                              interpolation=transforms.InterpolationMode.BICUBIC),
                            transforms.ToTensor()])
    return t(pil_img.convert('RGB')).unsqueeze(0)


def real_image_paths(extra_dirs, n_real):
    paths = []
    spec = importlib.util.find_spec('skimage')
    if spec and spec.submodule_search_locations:
        data = os.path.join(list(spec.submodule_search_locations)[0], 'data')
        paths += [os.path.join(data, n) for n in REAL_IMAGES if os.path.isfile(os.path.join(data, n))][:n_real]
    for d in extra_dirs:
        paths += sorted(os.path.join(d, n) for n in os.listdir(d)
                        if n.lower().endswith(('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')))
    if not paths:
        raise Fail('no real images for verification: install scikit-image (tools/requirements-export.txt) or pass '
                   '--images DIR')
    return paths


def verification_inputs(preprocess, extra_dirs, n_real, n_random, seed=0):
    """(names, tensor [n,3,224,224]) from the reference's own preprocess (PIL resize BICUBIC, /255)."""
    import numpy as np
    import torch
    from PIL import Image
    names, xs = [], []
    for p in real_image_paths(extra_dirs, n_real):
        with Image.open(p) as im:
            xs.append(preprocess(im))
        names.append(os.path.basename(p))
    rng = np.random.default_rng(seed)
    for i in range(n_random):
        if i % 2 == 0:  # a random-size, random-content uint8 picture through the same PIL path
            h, w = int(rng.integers(32, 640)), int(rng.integers(32, 640))
            mode = 'RGBA' if i % 4 == 2 else 'RGB'
            arr = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
            xs.append(preprocess(Image.fromarray(arr, mode)))
            names.append(f'noise-{mode}-{w}x{h}')
        else:  # a random float tensor in [0, 1] (not on the uint8 grid)
            xs.append(torch.from_numpy(rng.random((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)))
            names.append('uniform-float')
    return names, torch.cat(xs, 0).contiguous()


def reference_run(ref, x):
    """Run the reference forward on pairs (x[0], x[1]), (x[2], x[3]), ...: returns (embeddings [n, D] in input
    order, the reference's own pair distances [n//2]). Embeddings are taken from the reference's embed() calls."""
    import torch
    pm = ref.get_base_model()
    captured = []
    orig = type(pm).embed

    def embed(img):
        e = orig(pm, img)
        captured.append(e)
        return e
    n = x.shape[0] - x.shape[0] % 2
    pm.embed = embed
    try:
        d = ref(x[0:n:2], x[1:n:2])
    finally:
        del pm.embed
    ea, eb = captured
    e = torch.empty(x.shape[0], ea.shape[1])
    e[0:n:2], e[1:n:2] = ea, eb
    if n < x.shape[0]:
        e[n:] = pm.embed(x[n:])
    return e, d.reshape(-1)


def pair_distances(e):
    """All-pairs 1 - cosine, as the reference's forward computes it (F.cosine_similarity) on embeddings e."""
    import torch
    import torch.nn.functional as F
    n = e.shape[0]
    i, j = torch.triu_indices(n, n, 1)
    return 1 - F.cosine_similarity(e[i], e[j], dim=-1)


def verify(path, precision, ref_e, ref_d, x, threads, tol):
    """Compare the ONNX model (ONNX Runtime, CPU) with the reference's figures. Returns the figures dict."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    xn = x.numpy()
    t = time.time()
    e = sess.run(['embedding'], {'image': xn})[0]
    t_batch = time.time() - t
    if e.shape != tuple(ref_e.shape) or e.dtype != np.float32:
        raise Fail(f'ONNX output is {e.dtype} {e.shape}, expected float32 {tuple(ref_e.shape)}', EXIT_VERIFY)
    singles = [sess.run(['embedding'], {'image': xn[i:i + 1]})[0] for i in range(min(2, len(xn)))]
    e64 = e.astype(np.float64)
    n = len(e)
    d_pairs = 1 - np.einsum('ij,ij->i', e64[0:n - n % 2:2], e64[1:n - n % 2:2])
    iu = np.triu_indices(n, 1)
    d_all = 1 - (e64 @ e64.T)[iu]
    ref_all = pair_distances(ref_e).double().numpy()
    re = ref_e.double().numpy()
    de = np.abs(e64 - re)
    dd = np.abs(d_pairs - ref_d.double().numpy())
    da = np.abs(d_all - ref_all)
    batch1 = max(float(np.abs(s[0] - e[i]).max()) for i, s in enumerate(singles))
    fig = {
        'precision': precision, 'images': n,
        'embedding_max_abs': float(de.max()), 'embedding_mean_abs': float(de.mean()),
        'distance_max_abs': float(max(dd.max(), da.max())), 'distance_mean_abs': float(da.mean()),
        'pair_distance_max_abs': float(dd.max()), 'all_pairs_distance_max_abs': float(da.max()),
        'batch1_vs_batchN_max_abs': batch1,
        'norm_max_dev': float(np.abs(np.linalg.norm(e64, axis=1) - 1).max()),
        'ref_distance_range': [float(ref_all.min()), float(ref_all.max())],
        'onnx_seconds_per_image': t_batch / n,
        'tolerance_embedding': tol['embedding'], 'tolerance_distance': tol['distance'],
        'ok': bool(np.isfinite(e).all() and de.max() <= tol['embedding'] and max(dd.max(), da.max()) <= tol['distance']
                   and batch1 <= tol['embedding']),
    }
    del sess
    return fig


def fmt_fig(f):
    return (f'embeddings max|d|={f["embedding_max_abs"]:.3g} mean|d|={f["embedding_mean_abs"]:.3g} '
            f'(tol {f["tolerance_embedding"]:g}); distances max|d|={f["distance_max_abs"]:.3g} '
            f'mean|d|={f["distance_mean_abs"]:.3g} (tol {f["tolerance_distance"]:g}); '
            f'batch 1 vs N max|d|={f["batch1_vs_batchN_max_abs"]:.3g}; {f["images"]} images')


def read_existing(path):
    """metadata of an installed model whose .sha256 matches, else None."""
    import onnx
    side = path + '.sha256'
    if not (os.path.isfile(path) and os.path.isfile(side)):
        return None
    with open(side) as f:
        want = f.read().split()[:1]
    if not want or sha256_file(path) != want[0]:
        log(f'{path}: checksum does not match {side}: re-exporting')
        return None
    try:
        m = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable model: redo
        return None
    meta = {p.key: p.value for p in m.metadata_props}
    meta['sha256'] = want[0]
    return meta


def install(tmp, path, digest):
    umask = os.umask(0)
    os.umask(umask)
    with disk_errors(f'installing {path}'):
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it 0600
        os.replace(tmp, path)
        side_tmp = path + '.sha256.tmp'
        with open(side_tmp, 'w') as f:
            f.write(f'{digest}  {os.path.basename(path)}\n')
        os.replace(side_tmp, path + '.sha256')


# ---------------------------------------------------------------------------------------------------------------

def process_type(dtype, a, report):
    t0 = time.time()
    timings = {}
    log(f'=== {dtype} ===')
    if dtype == 'dinov2_vitb14':
        repo = os.path.join(a.checkpoint_dir, HUB['dinov2_vitb14'][0])
        if weights_kind(a.checkpoint_dir) != 'official' and not os.path.isfile(os.path.join(repo, 'hubconf.py')):
            msg = ('dinov2_vitb14 needs the facebookresearch/dinov2 torch.hub code, which a random-weight cache does '
                   f'not have (put a copy of that repository at {repo})')
            if a.type == 'all':
                log(f'skipped: {msg}')
                report.append({'type': dtype, 'skipped': True, 'reason': msg})
                return
            raise Fail(msg, EXIT_CHECKPOINTS)
    precisions = ['fp32', 'fp16'] if a.fp16 else ['fp32']
    if a.fp16_only:
        precisions = ['fp16']
    names = {p: f'{dtype}.onnx' if p == 'fp32' else f'{dtype}-fp16.onnx' for p in precisions}
    kind = weights_kind(a.checkpoint_dir)
    if kind != 'official' and not a.output_dir_given:
        raise Fail(f'{a.checkpoint_dir} holds RANDOM weights ({RANDOM_MARKER}); refusing to install them in the '
                   f'default model directory {a.output_dir}. Pass --output-dir explicitly.', EXIT_USAGE)

    # up to date? (no download, no reference load)
    hashes = checkpoint_hashes(dtype, a.checkpoint_dir)
    todo = []
    for p in precisions:
        path = os.path.join(a.output_dir, names[p])
        meta = None if a.force else read_existing(path)
        same = meta is not None and meta.get('dreamsim.exporter_version') == EXPORTER_VERSION and \
            meta.get('dreamsim.opset') == str(a.opset) and meta.get('dreamsim.type') == dtype and \
            meta.get('dreamsim.precision') == p and meta.get('dreamsim.weights') == kind
        if same and hashes is not None:
            same = meta.get('dreamsim.checkpoint_sha256') == json.dumps(hashes, sort_keys=True)
        if same:
            why = 'same checkpoints' if hashes is not None else f'checkpoints not in {a.checkpoint_dir}, so kept'
            log(f'{path}: up to date (sha256 {meta["sha256"]} checked; {why}; same exporter); nothing to do')
            report.append({'type': dtype, 'precision': p, 'path': path, 'skipped': True})
        else:
            todo.append(p)
    if not todo:
        return

    # early disk check (the exact one follows the export): fp32 ~4 bytes per parameter, fp16 half of it
    approx = (258e6 if dtype == 'ensemble' else 87e6) * 4
    need_space(a.output_dir, int(approx * (2.2 if 'fp32' in todo else 1.1) + approx * (0.6 if 'fp16' in todo else 0)),
               f'the {dtype} export')
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t = time.time()
    log(f'checkpoints: {a.checkpoint_dir} ({"RANDOM weights, offline cache" if kind != "official" else "official"}); '
        f'torch {torch.__version__}, {a.threads} thread(s)')
    ensure_checkpoints(dtype, a.checkpoint_dir, not a.no_download)
    ref, preprocess = load_reference(dtype, a.checkpoint_dir)
    hashes = checkpoint_hashes(dtype, a.checkpoint_dir)
    if hashes is None:
        missing = [r for r in checkpoint_files(dtype, a.checkpoint_dir)
                   if not os.path.isfile(os.path.join(a.checkpoint_dir, r))]
        raise Fail(f'checkpoint files missing after loading the reference: {missing}', EXIT_CHECKPOINTS)
    timings['load_reference_s'] = time.time() - t
    log(f'reference loaded in {timings["load_reference_s"]:.1f}s')

    # verification data and the reference's figures (the unmerged peft model, as the reference runs it; computed
    # once, shared by fp32 and fp16)
    t = time.time()
    img_names, x = verification_inputs(preprocess, a.images, a.real_images, a.random_images)
    # tools that start from the exported model preprocess with contract_preprocess: the same tensor as the reference's
    x_contract = verification_inputs(contract_preprocess, a.images, a.real_images, a.random_images)[1]
    if not torch.equal(x, x_contract):
        raise Fail('contract_preprocess differs from the reference\'s preprocess: fix contract_preprocess',
                   EXIT_OTHER)
    log(f'verification images ({len(img_names)}): {", ".join(img_names)}')
    ref_e, ref_d = reference_run(ref, x)
    timings['reference_forward_s'] = time.time() - t
    log(f'reference embeddings and distances in {timings["reference_forward_s"]:.1f}s')

    t = time.time()
    merged, lora_summary = merge_lora(ref)
    del ref
    clean = build_clean(merged, dtype)
    timings['merge_build_s'] = time.time() - t
    # the clean torch module against the reference (diagnoses a disagreement before ONNX is involved)
    k = min(2, x.shape[0])
    dt = (clean(x[:k]) - ref_e[:k]).abs().max().item()
    log(f'clean torch module vs reference: max |d| embedding = {dt:.3g} (on {k} images)')
    if not dt <= TOL['fp32']['embedding']:
        raise Fail(f'the clean torch module disagrees with the reference by {dt:.3g}: not exporting', EXIT_VERIFY)

    branches = ','.join(f'{bb}:{EMBED_DIM[bb]}' for bb in TYPES[dtype])
    dim = sum(EMBED_DIM[bb] for bb in TYPES[dtype])
    import onnx
    import onnxruntime
    import peft
    with disk_errors(f'creating {a.output_dir}'):
        os.makedirs(a.output_dir, exist_ok=True)
    nparams = sum(t_.numel() for t_ in clean.parameters()) + sum(t_.numel() for t_ in clean.buffers())
    need_space(a.output_dir, int(nparams * 4 * 2.2), f'the {dtype} export')
    # export the fp32 graph once; the fp16 copy is converted from it
    t = time.time()
    fd, src = tempfile.mkstemp(prefix=f'.{dtype}.', suffix='.export.partial', dir=a.output_dir)
    os.close(fd)
    try:
        export_onnx(clean, src, a.opset)
        base = onnx.load(src)
    finally:
        os.remove(src)
    del clean, merged
    timings['torch_onnx_export_s'] = time.time() - t
    log(f'torch.onnx.export (opset {a.opset}, dynamic batch) in {timings["torch_onnx_export_s"]:.1f}s')
    for p in todo:
        path = os.path.join(a.output_dir, names[p])
        tol = {'embedding': a.tol_embedding if a.tol_embedding is not None and p == 'fp32' else TOL[p]['embedding'],
               'distance': a.tol_distance if a.tol_distance is not None and p == 'fp32' else TOL[p]['distance']}
        fd, tmp = tempfile.mkstemp(prefix=f'.{names[p]}.', suffix='.partial', dir=a.output_dir)
        os.close(fd)
        try:
            t = time.time()
            model = onnx.ModelProto()
            model.CopyFrom(base)
            if p == 'fp16':
                convert_fp16(model)
            meta = {
                'dreamsim.type': dtype,
                'dreamsim.input_size': str(INPUT_SIZE),
                'dreamsim.embedding_dim': str(dim),
                'dreamsim.reference_version': REFERENCE_VERSION,
                'dreamsim.precision': p,
                'dreamsim.branches': branches,
                'dreamsim.weights': kind,
                'dreamsim.input': 'image float32 [N,3,224,224] RGB [0,1]: PIL convert(RGB), '
                                  'resize((224,224), BICUBIC), /255',
                'dreamsim.output': 'embedding float32 [N,D]: concatenated branch features, minus their mean, '
                                   'L2-normalised; distance = 1 - dot(a, b)',
                'dreamsim.lora': lora_summary,
                'dreamsim.checkpoint_sha256': json.dumps(hashes, sort_keys=True),
                'dreamsim.exporter': 'gst-dreamsim tools/export_onnx.py',
                'dreamsim.exporter_version': EXPORTER_VERSION,
                'dreamsim.opset': str(a.opset),
                'dreamsim.torch_version': torch.__version__,
                'dreamsim.peft_version': peft.__version__,
                'dreamsim.onnx_version': onnx.__version__,
            }
            finalize_onnx(model, meta, tmp)
            t_export = time.time() - t + (timings['torch_onnx_export_s'] if p == todo[0] else 0)
            log(f'{names[p]}: written in {time.time() - t:.1f}s ({os.path.getsize(tmp) / 2**20:.0f} MiB); verifying '
                f'with ONNX Runtime {onnxruntime.__version__}')
            t = time.time()
            fig = verify(tmp, p, ref_e, ref_d, x, a.threads, tol)
            t_verify = time.time() - t
            fig.update(type=dtype, path=path, export_s=t_export, verify_s=t_verify, **timings)
            log(f'{names[p]}: {fmt_fig(fig)}')
            if not fig['ok']:
                report.append(fig)
                kept = ''
                if a.keep_rejected:
                    kept_path = path + '.rejected'
                    os.replace(tmp, kept_path)
                    kept = f' (kept for inspection as {kept_path})'
                raise Fail(f'{names[p]} DISAGREES with the reference beyond tolerance: not installed{kept}.',
                           EXIT_VERIFY)
            # the verification figures go into the model too
            meta['dreamsim.verification'] = json.dumps(
                {k_: fig[k_] for k_ in ('images', 'embedding_max_abs', 'distance_max_abs', 'tolerance_embedding',
                                        'tolerance_distance')}, sort_keys=True)
            finalize_onnx(model, meta, tmp)
            del model
            digest = sha256_file(tmp)
            install(tmp, path, digest)
            fig['sha256'] = digest
            report.append(fig)
            log(f'installed {path}\n          sha256 {digest}')
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    log(f'{dtype}: done in {time.time() - t0:.1f}s')


def check_environment():
    """None if the pinned environment is there, else what is wrong."""
    import importlib.metadata as md
    if sys.version_info < (3, 11):
        return f'Python {sys.version.split()[0]}: the pinned packages need 3.11 or 3.12 (use tools/get_model.sh)'
    missing = [m for m in ('torch', 'dreamsim', 'peft', 'onnx', 'onnxruntime', 'open_clip', 'PIL')
               if importlib.util.find_spec(m) is None]
    if missing:
        return (f'{", ".join(missing)} not installed in {sys.executable}: run tools/get_model.sh (or '
                'pip install -r tools/requirements-export.txt in a virtual environment)')
    if md.version('dreamsim') != REFERENCE_VERSION:
        return f'dreamsim {md.version("dreamsim")} installed; this exporter reproduces dreamsim=={REFERENCE_VERSION}'
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n', 2)[2])
    ap.add_argument('--type', default=','.join(DEFAULT_TYPES),
                    help=f'comma-separated DreamSim types, or "all" ({",".join(ALL_TYPES)}); default %(default)s')
    ap.add_argument('--checkpoint-dir', default=default_checkpoint_dir(),
                    help='the reference\'s cache_dir: checkpoints are downloaded here when missing '
                         '(default %(default)s)')
    ap.add_argument('--output-dir', default=None,
                    help=f'where models go (default {default_output_dir()}, where the dreamsim element looks: '
                         '$GST_DREAMSIM_MODEL_DIR, else ${XDG_DATA_HOME:-~/.local/share}/gst-dreamsim/models)')
    ap.add_argument('--fp16', action='store_true', help='also write an fp16 copy <type>-fp16.onnx (for GPU providers)')
    ap.add_argument('--fp16-only', action='store_true', help='write only the fp16 copy')
    ap.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (>= 17; default %(default)s)')
    ap.add_argument('--force', action='store_true', help='export again even if an up-to-date model is in place')
    ap.add_argument('--no-download', action='store_true', help='fail instead of downloading missing checkpoints')
    ap.add_argument('--images', action='append', default=[], metavar='DIR',
                    help='more real images for verification (repeatable)')
    ap.add_argument('--real-images', type=int, default=6, help='scikit-image photographs to verify on (default 6)')
    ap.add_argument('--random-images', type=int, default=4, help='random images to verify on (default 4)')
    ap.add_argument('--tol-embedding', type=float, default=None,
                    help=f'fp32 max |delta| of embeddings (default {TOL["fp32"]["embedding"]:g}; fp16 '
                         f'{TOL["fp16"]["embedding"]:g})')
    ap.add_argument('--tol-distance', type=float, default=None,
                    help=f'fp32 max |delta| of distances (default {TOL["fp32"]["distance"]:g}; fp16 '
                         f'{TOL["fp16"]["distance"]:g})')
    ap.add_argument('--threads', type=int, default=max(1, os.cpu_count() or 1), help='CPU threads')
    ap.add_argument('--keep-rejected', action='store_true', help='keep a model that failed verification as '
                    '<file>.rejected (never under the name the element loads)')
    ap.add_argument('--report-json', help='write the verification figures here')
    a = ap.parse_args(argv)
    types = ALL_TYPES if a.type == 'all' else [t for t in a.type.split(',') if t]
    for t in types:
        if t not in TYPES:
            ap.error(f'unknown type {t!r}; choose from {", ".join(ALL_TYPES)} or all')
    if a.opset < 17:
        ap.error('--opset must be >= 17 (LayerNormalization)')
    a.output_dir_given = a.output_dir is not None
    a.output_dir = os.path.abspath(os.path.expanduser(a.output_dir or default_output_dir()))
    a.checkpoint_dir = os.path.abspath(os.path.expanduser(a.checkpoint_dir))
    for d in a.images:
        if not os.path.isdir(d):
            ap.error(f'--images {d}: not a directory')
    err = check_environment()
    if err:
        print(f'ERROR: {err}', file=sys.stderr)
        return EXIT_USAGE
    warnings.filterwarnings('ignore', category=FutureWarning)  # the reference's torch.load / weight_norm calls
    warnings.filterwarnings('ignore', message='.*weight_norm.*')
    warnings.filterwarnings('ignore', message='Already found a `peft_config` attribute')  # the reference wraps twice
    log(f'types: {", ".join(types)}; checkpoints: {a.checkpoint_dir}; output: {a.output_dir}')
    report, code = [], 0
    t0 = time.time()
    for t in types:
        try:
            process_type(t, a, report)
        except Fail as e:
            print(f'ERROR ({t}): {e}', file=sys.stderr, flush=True)
            code = code or e.code
            if e.code in (EXIT_DISK, EXIT_USAGE):
                break
        finally:
            import gc
            gc.collect()
    if a.report_json:
        with open(a.report_json, 'w') as f:
            json.dump(report, f, indent=1)
    log(f'finished in {time.time() - t0:.1f}s' + ('' if code == 0 else f' with errors (exit {code})'))
    return code


if __name__ == '__main__':
    sys.exit(main())
