#!/usr/bin/env python3
"""Write a DreamSim checkpoint folder holding RANDOM weights, in the layout the reference package reads.

The reference package (dreamsim==0.2.1 on PyPI) downloads a checkpoint zip from GitHub the first time a type is
used, and the DINO backbone through torch.hub. A machine without that access can still run the whole model path
(the reference's own loading and LoRA merge, tools/export_onnx.py, tools/parity.py, tools/reference_bench.py) on a
folder written by this script: same files, same tensor names and shapes, random values. Distances computed with
these weights mean nothing as perception; everything else (architecture, preprocessing, export, numerics) is the
reference's.

    tools/.venv/bin/python tools/make_random_checkpoints.py DIR [--type ensemble,dino_vitb16,...|all] [--seed N]
    tools/get_model.sh --checkpoint-dir DIR --output-dir MODELS --type dino_vitb16

Run it with the export environment's Python (tools/get_model.sh --env-only makes it): it needs torch and dreamsim.

What it writes, relative to DIR (the reference's cache_dir), for the types asked for:
  RANDOM_WEIGHTS_README.txt               marks the folder as random (tools/export_onnx.py reads it and labels the
                                          models dreamsim.weights=random-offline-cache)
  facebookresearch_dino_main/hubconf.py   stands in for the torch.hub repository 'facebookresearch/dino:main': it
                                          builds DINO's ViT-B/16 from the copy inside the dreamsim package
  checkpoints/dino_vitbase16_pretrain.pth what torch.hub would have downloaded for that backbone
  dino_vitb16_pretrain.pth                the DINO training checkpoint (dreamsim reads its projection head only)
  clip_vitb16_pretrain.pth.tar, open_clip_vitb16_pretrain.pth.tar, clip_vitb32_pretrain.pth.tar,
  open_clip_vitb32_pretrain.pth.tar       CLIP / OpenCLIP visual towers converted to dreamsim's ViT layout
  synclr_vit_b_16.pth                     SynCLR ViT-B/16
  <tag>_lora/adapter_config.json, adapter_model.safetensors
                                          the LoRA adapters (random A and B, B non-zero so the merge changes W)

Values: each backbone starts from the module's own initialisation (dreamsim's ViT code), then its LayerNorm gains
and all biases get random values, so no part of the graph is trivially 1 or 0. Every file is generated from its
own seed, derived from --seed and the file's path, so the output is the same whatever --type selects and however
often it runs (files already there with the same seed are left as they are).

Not covered: dinov2_vitb14. The reference builds it from the facebookresearch/dinov2 torch.hub code, which neither
dreamsim nor this repository ships; tools/export_onnx.py skips it on a random folder with --type all.

Exit status: 0 done, 1 error, 2 usage (unknown type, a folder that holds real checkpoints, another seed).
"""
import argparse
import hashlib
import json
import os
import sys

TYPES = ['ensemble', 'dino_vitb16', 'clip_vitb32', 'open_clip_vitb32', 'synclr_vitb16']
NOT_COVERED = {'dinov2_vitb14': 'needs the facebookresearch/dinov2 torch.hub code, which neither dreamsim nor this '
                                'repository ships'}
MARKER = 'RANDOM_WEIGHTS_README.txt'  # the name tools/export_onnx.py looks for
HUB_REPO = 'facebookresearch_dino_main'  # torch.hub's folder for 'facebookresearch/dino:main'
# torch.hub.load_state_dict_from_url keeps a download under <hub dir>/checkpoints/<file name of the URL>.
DINO_WEIGHTS_URL = 'https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth'
DINO_WEIGHTS = 'checkpoints/' + DINO_WEIGHTS_URL.rsplit('/', 1)[1]
# LoRA settings written into adapter_config.json (chosen here: r=16 on every attn.qkv, as the reference trains).
LORA = {'ensemble': {'r': 16, 'lora_alpha': 8, 'lora_dropout': 0.3},
        'single': {'r': 16, 'lora_alpha': 32, 'lora_dropout': 0.2}}
WIDTH = 768       # ViT-B token width
CLIP_DIM = 512    # CLIP / OpenCLIP embedding width (the 'proj' matrix is WIDTH x CLIP_DIM)

HUBCONF = f'''\
# torch.hub entry points for 'facebookresearch/dino:main', written by gst-dreamsim's
# tools/make_random_checkpoints.py for a RANDOM-weight checkpoint folder (see {MARKER} beside it).
# The network is DINO's ViT-B/16 as the dreamsim package ships it; the weights come from the file
# torch.hub keeps for {DINO_WEIGHTS_URL.rsplit('/', 1)[1]} (written there by the same script), so nothing is downloaded.
import torch
from dreamsim.feature_extraction.vision_transformer import vit_base

dependencies = ["torch", "dreamsim"]


def dino_vitb16(pretrained=True, **kwargs):
    model = vit_base(patch_size=16, num_classes=0, **kwargs)
    if pretrained:
        state = torch.hub.load_state_dict_from_url("{DINO_WEIGHTS_URL}", map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model
'''


def die(code, msg):
    print(f'make_random_checkpoints: {msg}', file=sys.stderr)
    sys.exit(code)


def seed_of(seed, rel):
    """A 63-bit seed for one file, from the global seed and the file's path."""
    return int.from_bytes(hashlib.sha256(f'{seed}:{rel}'.encode()).digest()[:8], 'little') >> 1


def backbones(dtype):
    from dreamsim.config import dreamsim_args
    return dreamsim_args['model_config'][dtype]['model_type'].split(',')


def lora_tag(dtype):
    """The adapter folder dreamsim() reads for a type (dreamsim/model.py)."""
    return 'ensemble_lora' if dtype == 'ensemble' else f'{backbones(dtype)[0]}_single_lora'


def files_for(dtype):
    """{relative path: maker} of every file the reference reads for a type."""
    out = {f'{lora_tag(dtype)}/adapter_config.json': lambda rel, s, t=dtype: adapter_config(t),
           f'{lora_tag(dtype)}/adapter_model.safetensors': lambda rel, s, t=dtype: adapter_weights(t, s)}
    for bb in backbones(dtype):
        if bb == 'dino_vitb16':
            out[f'{HUB_REPO}/hubconf.py'] = lambda rel, s: HUBCONF
            out[DINO_WEIGHTS] = lambda rel, s: vit_state(16, s)
            out['dino_vitb16_pretrain.pth'] = lambda rel, s: {'student': dino_head(s)}
        elif bb in ('clip_vitb16', 'clip_vitb32', 'open_clip_vitb16', 'open_clip_vitb32'):
            patch = int(bb[-2:])
            out[f'{bb}_pretrain.pth.tar'] = lambda rel, s, p=patch: {'state_dict': clip_state(p, s)}
        elif bb == 'synclr_vitb16':
            out['synclr_vit_b_16.pth'] = lambda rel, s: {
                'model': {'module.visual.' + k: v for k, v in vit_state(16, s).items()}}
        else:
            raise KeyError(f'backbone {bb} of {dtype}')
    return out


def seeded(seed):
    """Seeds torch's global generator (module initialisers draw from it; callers restore it with fork_rng) and
    returns a generator of the same seed for the values drawn here."""
    import torch
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def randomise_flat_params(module, gen):
    """The module's 1-D parameters, which initialisers set to constants: LayerNorm gains ~ 1 + N(0, 0.1^2),
    biases ~ N(0, 0.02^2)."""
    import torch
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                noise = torch.randn(p.shape, generator=gen)
                p.copy_(1 + 0.1 * noise if isinstance(module.get_submodule(name.rsplit('.', 1)[0]),
                                                      torch.nn.LayerNorm) and name.endswith('weight')
                        else 0.02 * noise)


def vit_state(patch, seed, clip=False):
    """State dict of dreamsim's ViT-B/<patch> (for CLIP: with ln_pre as pos_drop, as load_clip_as_dino sets it)."""
    import torch
    from dreamsim.feature_extraction.vision_transformer import vit_base
    with torch.random.fork_rng(devices=[]):
        gen = seeded(seed)
        vit = vit_base(patch_size=patch, num_classes=0)  # its own init: truncated normal, std 0.02
        if clip:
            vit.pos_drop = torch.nn.LayerNorm(WIDTH)
        randomise_flat_params(vit, gen)
    return {k: v.detach().clone() for k, v in vit.state_dict().items()}


def clip_state(patch, seed):
    import torch
    state = vit_state(patch, seed, clip=True)
    gen = torch.Generator().manual_seed(seed ^ 1)
    state['proj'] = torch.randn(WIDTH, CLIP_DIM, generator=gen) * WIDTH ** -0.5
    return state


def dino_head(seed):
    """The student projection head entries dreamsim copies out of dino_vitb16_pretrain.pth."""
    import torch
    from dreamsim.feature_extraction.vision_transformer import DINOHead
    with torch.random.fork_rng(devices=[]):
        gen = seeded(seed)
        head = DINOHead(WIDTH, 2048)
        randomise_flat_params(head.mlp, gen)
        out = {f'module.head.mlp.{k}': v.detach().clone() for k, v in head.mlp.state_dict().items()}
        out['module.head.last_layer.weight'] = 0.02 * torch.randn(tuple(head.last_layer.weight.shape), generator=gen)
    return out


def adapter_config(dtype):
    cfg = dict(LORA['ensemble' if dtype == 'ensemble' else 'single'])
    cfg.update(peft_type='LORA', bias='none', target_modules=['qkv'], base_model_name_or_path=None,
               task_type=None, inference_mode=True)
    return json.dumps(cfg, indent=2) + '\n'


def adapter_weights(dtype, seed):
    """LoRA A and B for attn.qkv of every block of every backbone, named as peft saves them."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    r = LORA['ensemble' if dtype == 'ensemble' else 'single']['r']
    out = {}
    for i in range(len(backbones(dtype))):
        for b in range(12):
            key = f'base_model.model.extractor_list.{i}.model.blocks.{b}.attn.qkv'
            out[f'{key}.lora_A.weight'] = 0.02 * torch.randn(r, WIDTH, generator=gen)
            out[f'{key}.lora_B.weight'] = 0.02 * torch.randn(3 * WIDTH, r, generator=gen)
    return out


def write(path, obj):
    """Write through a temporary file in the same folder, so an interrupted run leaves no truncated file. Tensors
    are serialised in memory first: the bytes then do not depend on the file's name."""
    import io
    import torch
    if isinstance(obj, str):
        data = obj.encode()
    elif path.endswith('.safetensors'):
        from safetensors.torch import save
        data = save(obj)
    else:
        buf = io.BytesIO()
        torch.save(obj, buf)
        data = buf.getvalue()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.partial'
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 epilog='See the module docstring (head -40 of this file) for the files written.')
    ap.add_argument('dir', help="the checkpoint folder (the reference's cache_dir; created if missing)")
    ap.add_argument('--type', default='all',
                    help=f'comma-separated DreamSim types, or all (= {",".join(TYPES)}); default all')
    ap.add_argument('--seed', type=int, default=0, help='seed of every random value (default 0)')
    a = ap.parse_args()

    types = TYPES if a.type == 'all' else [t for t in a.type.split(',') if t]
    for t in types:
        if t in NOT_COVERED:
            die(2, f'{t} is not covered: it {NOT_COVERED[t]}. The other types: {", ".join(TYPES)}.')
        if t not in TYPES:
            die(2, f'unknown type {t!r}; known: {", ".join(TYPES)}')
    try:
        import torch  # noqa: F401
        import dreamsim  # noqa: F401
    except ImportError as e:
        die(1, f'{e}: run this with the export environment\'s Python (tools/get_model.sh --env-only makes '
               'tools/.venv), e.g. tools/.venv/bin/python tools/make_random_checkpoints.py DIR')

    root = os.path.abspath(a.dir)
    marker = os.path.join(root, MARKER)
    wanted = {}
    for t in types:
        wanted.update(files_for(t))

    stamp = f'seed={a.seed}'
    if os.path.exists(marker):
        with open(marker) as f:
            first = f.readline().strip()
        if first != stamp:
            die(2, f'{root} holds random checkpoints of another seed ({first}); use an empty folder, or delete it')
    else:
        real = [r for r in sorted(wanted) if os.path.exists(os.path.join(root, r))]
        if real:
            die(2, f'{os.path.join(root, real[0])} exists and {MARKER} does not: this folder holds checkpoints '
                   'that this script did not write (real weights?). Use another folder.')

    os.makedirs(root, exist_ok=True)
    with open(marker, 'w') as f:
        f.write(f'{stamp}\n'
                'RANDOM weights, not DreamSim\'s: written by gst-dreamsim\'s tools/make_random_checkpoints.py in the\n'
                'layout the reference package dreamsim==0.2.1 reads, for offline tests of the export and parity\n'
                'tools. Distances computed with them mean nothing as perception. Do not publish models made from\n'
                'them as DreamSim.\n')
    made = kept = 0
    for rel in sorted(wanted):
        path = os.path.join(root, rel)
        if os.path.exists(path):
            kept += 1
            continue
        write(path, wanted[rel](rel, seed_of(a.seed, rel)))
        made += 1
        print(f'wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)')
    print(f'done: random-weight checkpoints for {", ".join(types)} in {root} (seed {a.seed}; {made} file(s) '
          f'written, {kept} already there)')


if __name__ == '__main__':
    main()
