"""Read network files as StyleGAN2-ADA's legacy.py users do, and convert the FPA authors'
reference checkpoints into network files of this codebase.

`legacy.load_network_pkl(f)` is kept for scripts written against upstream: it reads any
network file that `networks.load_network` reads (ours, the reference FPA checkpoints,
StyleGAN2-ADA/StyleGAN3 pickles), never executing code from it.

Command line: python legacy.py --source=CKPT --dest=NETWORK.pkl [options] (see --help and
docs/legacy.md) writes what it read as a code-free network file of this codebase, or, with
--to=upstream, as a StyleGAN2-ADA network pickle for upstream's tools (networks/export.py: the
only file with code in it that this codebase writes).
Hyperparameters that tensor shapes reveal are inferred; the options shapes cannot reveal
default to the paper's flags.
"""

import os
from typing import Any

import click

import dnnlib
import networks
from networks import export
from networks.reference import DEFAULT_IMG_CHANNELS, MODEL_TYPES, V1_DEFAULT_NUM_STEPS
from torch_utils import misc, persistence

# Classes with fp16 layers, and what upstream's --force-fp16 sets on them.
FP16_CLASSES = ('networks.stylegan2.Generator', 'networks.stylegan2.Discriminator')
FORCE_FP16_KWARGS = dict(num_fp16_res=4, conv_clamp=256)

#----------------------------------------------------------------------------

def load_network_pkl(f: Any, force_fp16: bool = False, **convert_options) -> dnnlib.EasyDict:
    """Upstream's entry point, kept: a path, URL or binary file object -> EasyDict with G_ema
    (and G, D, augment_pipe, training_set_kwargs where the file has them). `force_fp16` as
    upstream's: StyleGAN2 networks rebuilt with fp16 in the 4 highest resolutions and
    conv_clamp=256. `convert_options` as networks.reference.convert_reference_checkpoint.
    ValueError of one line naming the file."""
    data = networks.load_network(f, **convert_options)
    if force_fp16:
        for key in ('G', 'D', 'G_ema'):
            data[key] = with_fp16(data[key])
    return data

def with_fp16(module: Any) -> Any:
    """`module` rebuilt with FORCE_FP16_KWARGS and the same tensors if it is a StyleGAN2
    network (the FPA has no fp16 layers); unchanged otherwise."""
    if getattr(module, 'class_name', None) not in FP16_CLASSES:
        return module
    kwargs = dnnlib.EasyDict(module.init_kwargs, **FORCE_FP16_KWARGS)
    if kwargs == module.init_kwargs:
        return module
    new = dnnlib.util.get_obj_by_name(module.class_name)(**kwargs).eval().requires_grad_(False)
    misc.copy_params_and_buffers(module, new, require_all=True)
    return new

#----------------------------------------------------------------------------
# Command line.

@click.command()
@click.option('--source',                                 help='Reference FPA checkpoint or StyleGAN2-ADA/StyleGAN3 pickle: path, URL or upstream name (ffhq256, ...)', metavar='PATH', required=True)
@click.option('--dest',                                   help='Network file to write (not an existing file, unless --overwrite)', metavar='PATH', required=True)
@click.option('--overwrite',                              help='Replace --dest if it exists', is_flag=True)
@click.option('--to',                                     help='ours: code-free network file of this codebase; upstream: StyleGAN2-ADA network pickle (carries code, for upstream\'s tools)', type=click.Choice(['ours', 'upstream']), default='ours', show_default=True)
@click.option('--force-fp16',                             help='Force the StyleGAN2 networks to use FP16 (4 highest resolutions, conv_clamp=256)', type=bool, default=False, metavar='BOOL', show_default=True)
@click.option('--model-type',                             help='Reference FPA model type  [default: inferred from the parameter names]', type=click.Choice(list(MODEL_TYPES)), default=None)
@click.option('--num-steps',                              help=f'Painting steps T  [default: inferred for v2; {V1_DEFAULT_NUM_STEPS} for v1, whose checkpoints do not store it]', type=click.IntRange(min=1), default=None)
@click.option('--img-resolution',                         help='Image side N, only to disambiguate  [default: inferred from the key/value projection]', type=click.IntRange(min=1), default=None)
@click.option('--img-channels',                           help=f'Colour channels C  [default: from the U-Net, else {DEFAULT_IMG_CHANNELS}]', type=click.IntRange(min=1), default=None)
@click.option('--key-softmax/--no-key-softmax',           help='Softmax over each key  [default: on; off for lstm_sum, trained without it]', default=None)
@click.option('--out-tanh/--no-out-tanh',                 help='Image = tanh(W) (and tanh on the U-Net output)', default=True, show_default=True)
@click.option('--input-tanh/--no-input-tanh',             help='v2: tanh on the input generator', default=True, show_default=True)
@click.option('--value-tanh/--no-value-tanh',             help='tanh on the values', default=False, show_default=True)
@click.option('--raw-lr/--no-raw-lr',                     help='Raw learning-rate logits instead of sigmoid', default=False, show_default=True)
@click.option('--unet-input-tanh/--no-unet-input-tanh',   help='FPA/U-Net: tanh on the U-Net input', default=True, show_default=True)
@click.pass_context
def convert_main(ctx, source, dest, overwrite, to, force_fp16, **options):
    """Convert a reference FPA checkpoint or a StyleGAN2-ADA/StyleGAN3 network pickle into a
    network file of this codebase (code-free; what every script here reads), or export a
    network as a StyleGAN2-ADA pickle for upstream's tools (--to=upstream).

    \b
    python legacy.py --source=model_1.pt --dest=fpa-celeba64.pkl
    python legacy.py --source=model_1.pt --dest=fpa.pkl --model-type=lstm_delta --num-steps=16
    python legacy.py --source=ffhq256 --dest=ffhq256.pkl     # upstream's named networks, URLs, paths
    python legacy.py --source=network-snapshot-000400.pkl --dest=upstream.pkl --to=upstream
    """
    # Only the conversion options given on the command line: their defaults live in networks.reference.
    given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    try:
        if os.path.exists(source) and os.path.abspath(source) == os.path.abspath(dest):
            raise ValueError(f'{dest}: refusing to overwrite the source file')
        if os.path.exists(dest) and not overwrite:
            raise ValueError(f'--dest={dest}: already exists; refusing to replace it (give --overwrite to replace it)')
        result = load_network_pkl(source, force_fp16=force_fp16, **given)
        entries = {k: result.get(k) for k in ('G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs')}
        provenance = {k: result[k] for k in ('legacy_source', 'upstream_source') if k in result}
        if to == 'upstream':
            export.export_upstream_pickle(dest, **entries)
        else:
            persistence.save_network(dest, **entries, **provenance)
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from None
    if 'legacy_source' in result:
        info = result.legacy_source
        print(f'{source}: reference FPA checkpoint, model type {info["model_type"]}, EMA weights: {info["ema"]}')
        for name, value in result.G_ema.init_kwargs.items():
            print(f'  {name:16s} = {value!r:28s} {info["origin"].get(name, "")}')
    else:
        info = result.get('upstream_source', dict(format='network file of this codebase'))
        modules = ', '.join(f'{k} ({type(v).__module__}.{type(v).__name__})' for k, v in entries.items() if hasattr(v, 'state_dict'))
        print(f'{source}: {info["format"]}' + (f' ({info["flavour"]})' if info.get('flavour') else '') + f'; {modules}')
    print(f'Wrote {dest}' + (' (StyleGAN2-ADA network pickle: it carries the code of its networks)' if to == 'upstream' else ''))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    convert_main()

#----------------------------------------------------------------------------
