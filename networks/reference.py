"""The FPA authors' reference checkpoints, converted into networks.fpa.Generator.

A checkpoint of the reference implementation (Irie & Schmidhuber, ICLR 2023, code "fpainter")
is a torch file whose 'GAN' entry is a state dict holding the generator under 'G.' and its
EMA copy under 'GE.'. Its hyperparameters are not stored: they are inferred from the
parameter names (which of the six model types) and the tensor shapes (T, N, C, hidden size,
layers, U-Net widths); what shapes cannot reveal comes from options that default to the
paper's flags. Every tensor is copied by an explicit name mapping (docs/legacy.md, and the
layout in docs/reference/reference-checkpoint-params.txt).
"""

import os
import re
from typing import Any

import torch

import dnnlib
from networks import fpa
from torch_utils import persistence

#----------------------------------------------------------------------------
# The reference model types (docs/legacy.md). `kv` is the reference's name of the projection
# from the LSTM state to keys, values (and learning rates); _modules_of() lists the parameter
# groups that a checkpoint of the type holds (besides the mod_dict.* duplicates).

MODEL_TYPES = {
    'lstm_delta':               dnnlib.EasyDict(rule='delta',   input_generator='v1', latent_to_init=True,  unet=False, kv='kvb_net', key_softmax=True),
    'lstm_delta_unet':          dnnlib.EasyDict(rule='delta',   input_generator='v1', latent_to_init=True,  unet=True,  kv='kvb_net', key_softmax=True),
    'lstm_delta_split_v2':      dnnlib.EasyDict(rule='delta',   input_generator='v2', latent_to_init=True,  unet=False, kv='kvb_net', key_softmax=True),
    'lstm_delta_split_v2_unet': dnnlib.EasyDict(rule='delta',   input_generator='v2', latent_to_init=True,  unet=True,  kv='kvb_net', key_softmax=True),
    'lstm_oja_split_v2':        dnnlib.EasyDict(rule='oja',     input_generator='v2', latent_to_init=False, unet=False, kv='kvb_net', key_softmax=True),
    'lstm_sum':                 dnnlib.EasyDict(rule='hebbian', input_generator='v1', latent_to_init=True,  unet=False, kv='kv_net',  key_softmax=False),
}
PAINTER_IMPL = {'delta': 'parallel', 'hebbian': 'parallel', 'oja': 'sequential'}   # Oja has no parallel form.
V1_DEFAULT_NUM_STEPS = 64           # v1 checkpoints do not store T; the paper's (and the reference's default) value.
DEFAULT_IMG_CHANNELS = 3            # Without a U-Net, shapes reveal only C*(2N+r): the reference trained RGB.

def _modules_of(spec: dnnlib.EasyDict) -> set[str]:
    modules = {'decoder_rnn', spec.kv}
    modules |= {'latent_to_init'} if spec.latent_to_init else set()
    modules |= {'input_generator', 'per_time_linear_input'} if spec.input_generator == 'v2' else set()
    modules |= {'u_net'} if spec.unet else set()
    return modules

OPTIONAL_MODULES = {'decoder_time_enc'}     # The reference's per-step position table (v2 only here).

#----------------------------------------------------------------------------
# Parameter names: reference -> networks.fpa.Generator (see the table in docs/legacy.md).

_PREFIX_RENAMES = {
    'latent_to_init.':        'synthesis.latent_to_init.',
    'input_generator.':       'synthesis.input_generator.',
    'per_time_linear_input.': 'synthesis.per_time_linear_input.',
    'decoder_rnn.':           'synthesis.decoder_rnn.',
    'kvb_net.':               'synthesis.kvb_net.',
    'kv_net.':                'synthesis.kvb_net.',
    'u_net.':                 'synthesis.unet.',
}
_EXACT_RENAMES = {'decoder_time_enc': 'synthesis.position_table'}

# Reference U-Net (positional ModuleLists, Residual(PreNorm(fn)) wrappers, LayerNorm g/b)
# -> networks.unet.UNet (named levels, AttentionBlock with norm/attn, ChannelNorm weight/bias).
UNET_RENAMES = [
    (r'^(downs|ups)\.(\d+)\.0\.',        r'\1.\2.res1.'),
    (r'^(downs|ups)\.(\d+)\.1\.',        r'\1.\2.res2.'),
    (r'^(downs|ups)\.(\d+)\.2\.',        r'\1.\2.attn.'),
    (r'^(downs|ups)\.(\d+)\.3\.',        r'\1.\2.resample.'),
    (r'\.fn\.fn\.to_out\.0\.',           r'.attn.to_out.'),
    (r'\.fn\.fn\.to_out\.1\.g$',         r'.attn.out_norm.weight'),
    (r'\.fn\.fn\.to_out\.1\.b$',         r'.attn.out_norm.bias'),
    (r'\.fn\.fn\.',                      r'.attn.'),
    (r'\.fn\.norm\.g$',                  r'.norm.weight'),
    (r'\.fn\.norm\.b$',                  r'.norm.bias'),
]

def unet_name(reference_name: str) -> str:
    """A reference U-Net parameter name (without 'u_net.') -> networks.unet.UNet's."""
    for pattern, replacement in UNET_RENAMES:
        reference_name = re.sub(pattern, replacement, reference_name)
    return reference_name

def generator_name(reference_name: str) -> str:
    """A reference generator parameter name (without 'G.'/'GE.') -> networks.fpa.Generator's."""
    if reference_name in _EXACT_RENAMES:
        return _EXACT_RENAMES[reference_name]
    for prefix, ours in _PREFIX_RENAMES.items():
        if reference_name.startswith(prefix):
            rest = reference_name[len(prefix):]
            return ours + (unet_name(rest) if prefix == 'u_net.' else rest)
    raise ValueError(f'no counterpart for reference parameter "{reference_name}"')

#----------------------------------------------------------------------------
# Reading the generator state dicts out of a checkpoint.

def _module_of(name: str) -> str:
    return name.split('.', 1)[0]

def split_generator_states(checkpoint: Any, where: str) -> tuple[dict, dict | None]:
    """(G state, GE state or None) with prefixes stripped and mod_dict.* duplicates dropped."""
    if not isinstance(checkpoint, dict) or 'GAN' not in checkpoint:
        keys = ', '.join(map(str, list(checkpoint)[:8])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f'{where}: not a reference FPA checkpoint (expected a dict with a "GAN" state dict; found {keys or "an empty dict"})')
    gan = checkpoint['GAN']
    if not isinstance(gan, dict):
        raise ValueError(f'{where}: "GAN" is a {type(gan).__name__}, expected a state dict')
    states = {}
    for prefix in ('G.', 'GE.'):
        state = {}
        for key, value in gan.items():
            if not (isinstance(key, str) and key.startswith(prefix)) or key[len(prefix):].startswith('mod_dict.'):
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f'{where}: GAN["{key}"] is a {type(value).__name__}, expected a tensor')
            state[key[len(prefix):]] = value
        states[prefix] = state
    if not states['G.']:
        raise ValueError(f'{where}: the "GAN" state dict holds no generator parameters (no "G." keys)')
    if not states['GE.']:
        return states['G.'], None
    if set(states['G.']) != set(states['GE.']):
        diff = sorted(set(states['G.']) ^ set(states['GE.']))
        raise ValueError(f'{where}: G and GE (EMA) hold different parameters, e.g. {", ".join(diff[:4])}')
    return states['G.'], states['GE.']

def infer_model_type(state: dict, where: str) -> str:
    """The model type whose parameter groups equal the checkpoint's."""
    found = {_module_of(name) for name in state} - OPTIONAL_MODULES
    for model_type, spec in MODEL_TYPES.items():
        if _modules_of(spec) == found:
            return model_type
    raise ValueError(f'{where}: unrecognised generator (parameter groups {", ".join(sorted(found))}); '
                     f'expected those of one of: {", ".join(MODEL_TYPES)} (see docs/legacy.md)')

#----------------------------------------------------------------------------
# Hyperparameters from tensor shapes.

class _ShapeReader:
    """Shape checks on a reference generator's state dict; each failure is a ValueError naming the file."""
    def __init__(self, state: dict, where: str, model_type: str):
        self.state, self.where, self.model_type = state, where, model_type

    def fail(self, message: str):
        raise ValueError(f'{self.where}: {message}')

    def get(self, name: str, ndim: int) -> tuple[int, ...]:
        if name not in self.state:
            self.fail(f'missing generator parameter "{name}" (model type {self.model_type})')
        if self.state[name].ndim != ndim:
            self.fail(f'"{name}" has shape {list(self.state[name].shape)}, expected {ndim} dimensions')
        return tuple(self.state[name].shape)

    def expect(self, name: str, shape: list, why: str) -> None:
        if self.get(name, len(shape)) != tuple(shape):
            self.fail(f'"{name}" has shape {list(self.state[name].shape)}, expected {list(shape)} ({why})')

def _infer_lstm(r: _ShapeReader, origin: dict) -> tuple[int, int, int]:
    """The slow net's LSTM: (layers L, hidden size H, input size)."""
    layers = sorted(int(m.group(1)) for m in (re.fullmatch(r'decoder_rnn\.weight_ih_l(\d+)', k) for k in r.state) if m)
    if not layers or layers != list(range(len(layers))):
        r.fail(f'expected LSTM parameters decoder_rnn.weight_ih_l0, _l1, ..., found layers {layers}')
    L = len(layers)
    H = r.get('decoder_rnn.weight_hh_l0', 2)[1]
    rnn_input_dim = r.get('decoder_rnn.weight_ih_l0', 2)[1]
    for l in range(L):
        in_dim = rnn_input_dim if l == 0 else H
        r.expect(f'decoder_rnn.weight_ih_l{l}', [4 * H, in_dim], f'LSTM with hidden size {H}')
        r.expect(f'decoder_rnn.weight_hh_l{l}', [4 * H, H], f'LSTM with hidden size {H}')
        r.expect(f'decoder_rnn.bias_ih_l{l}', [4 * H], f'LSTM with hidden size {H}')
        r.expect(f'decoder_rnn.bias_hh_l{l}', [4 * H], f'LSTM with hidden size {H}')
    rnn_names = {f'decoder_rnn.{kind}_l{l}' for l in range(L) for kind in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh')}
    if {n for n in r.state if n.startswith('decoder_rnn.')} != rnn_names:
        r.fail(f'unsupported LSTM parameters {sorted({n for n in r.state if n.startswith("decoder_rnn.")} - rnn_names)[:3]} '
               '(only unidirectional LSTMs without projections)')
    origin.update(hidden_dim='decoder_rnn.weight_hh_l0', num_layers='count of decoder_rnn.weight_ih_l*')
    return L, H, rnn_input_dim

def _infer_inputs(r: _ShapeReader, spec: dnnlib.EasyDict, num_steps: int | None, input_tanh: bool, rnn_input_dim: int,
                  origin: dict) -> tuple[dnnlib.EasyDict, int, int]:
    """The slow net's inputs: (their Generator kwargs, z_dim, painting steps T)."""
    kwargs = dnnlib.EasyDict()
    if spec.input_generator == 'v2':
        Tm, z_dim = r.get('input_generator.weight', 2)
        r.expect('input_generator.bias', [Tm], 'input generator')
        d_in, m = r.get('per_time_linear_input.weight', 2)
        r.expect('per_time_linear_input.bias', [d_in], 'per-step linear input')
        if Tm % m != 0:
            r.fail(f'input_generator.weight has {Tm} rows, expected a multiple of the per-step latent size {m} (T*m)')
        if num_steps is not None and num_steps != Tm // m:
            r.fail(f'--num-steps={num_steps} contradicts the checkpoint (input_generator rows {Tm} = T*m with m={m}: T={Tm // m})')
        T = Tm // m
        if rnn_input_dim != d_in:
            r.fail(f'decoder_rnn.weight_ih_l0 takes {rnn_input_dim} inputs, expected per_time_linear_input\'s {d_in}')
        kwargs.update(step_latent_dim=m, step_input_dim=d_in, input_tanh=input_tanh, position_table='decoder_time_enc' in r.state)
        if 'decoder_time_enc' in r.state:
            r.expect('decoder_time_enc', [T, d_in], 'per-step position table')
        origin.update(z_dim='input_generator.weight', num_steps='input_generator rows / m', step_latent_dim='per_time_linear_input.weight',
                      step_input_dim='per_time_linear_input.weight', input_tanh='option', position_table='decoder_time_enc present')
    else:
        z_dim = rnn_input_dim
        if 'decoder_time_enc' in r.state:
            r.fail('a v1 position table (decoder_time_enc) is not supported by networks.fpa')
        T = V1_DEFAULT_NUM_STEPS if num_steps is None else num_steps
        origin.update(z_dim='decoder_rnn.weight_ih_l0 (v1: the latent is the LSTM input)',
                      num_steps='option' if num_steps is not None else f'default {V1_DEFAULT_NUM_STEPS} (not stored in v1 checkpoints; pass --num-steps)')
    return kwargs, z_dim, T

def _infer_unet(r: _ShapeReader, spec: dnnlib.EasyDict, origin: dict) -> tuple[dict | None, int | None]:
    """The U-Net's kwargs and channel count (its shapes reveal it), or (None, None) without one."""
    unet_kwargs, unet_channels = None, None
    if spec.unet:
        dim, unet_channels = r.get('u_net.init_conv.weight', 4)[:2]
        num_levels = len({m.group(1) for m in (re.match(r'u_net\.downs\.(\d+)\.', k) for k in r.state) if m})
        dim_mults = []
        for i in range(num_levels):
            width = r.get(f'u_net.downs.{i}.0.block1.proj.weight', 4)[0]
            if width % dim != 0:
                r.fail(f'u_net.downs.{i} has width {width}, expected a multiple of the base width {dim}')
            dim_mults.append(width // dim)
        hidden = r.get('u_net.mid_attn.fn.fn.to_out.weight', 4)[1]
        if hidden % 4 != 0:
            r.fail(f'u_net attention width {hidden} is not divisible by the reference\'s 4 heads')
        unet_kwargs = dict(dim=dim, dim_mults=dim_mults, norm_groups=8, attn_heads=4, attn_head_dim=hidden // 4)
        origin.update(unet_kwargs='u_net.init_conv (dim), u_net.downs.*.0.block1 (dim_mults), to_out (attention width); '
                      'norm_groups=8 and 4 heads as in the reference')
    return unet_kwargs, unet_channels

def _infer_image_side(r: _ShapeReader, spec: dnnlib.EasyDict, C: int, H: int, img_channels: int | None, img_resolution: int | None,
                      unet_kwargs: dict | None, unet_channels: int | None, origin: dict) -> tuple[int, bool]:
    """(image side N, vector learning rate) from the rows of the key/value (and learning-rate)
    projection: C*(2N + r), r = 1 or N (vector learning rate), 0 for Hebbian."""
    rows = r.get(f'{spec.kv}.weight', 2)[0]
    r.expect(f'{spec.kv}.weight', [rows, H], 'projection of the LSTM state')
    r.expect(f'{spec.kv}.bias', [rows], 'projection of the LSTM state')
    if rows % C != 0:
        r.fail(f'{spec.kv}.weight has {rows} rows, expected a multiple of img_channels={C}')
    candidates = _side_candidates(rows, C, spec)
    if unet_channels is None and img_channels not in (None, DEFAULT_IMG_CHANNELS) and img_resolution is None \
            and candidates and _side_candidates(rows, DEFAULT_IMG_CHANNELS, spec):
        # Without a U-Net only C*(2N+r) is known: an RGB checkpoint read with another C gives a
        # wrong N (e.g. 39 rows: RGB 6x6, or 1 channel 19x19), so the side must be confirmed.
        rgb_side = _side_candidates(rows, DEFAULT_IMG_CHANNELS, spec)[0][0]
        r.fail(f'--img-channels={C} reads the {rows} rows of {spec.kv}.weight as {candidates[0][0]}x{candidates[0][0]} images, '
               f'but they also fit {rgb_side}x{rgb_side} RGB images (the reference trains RGB); give --img-resolution to confirm the side')
    if img_resolution is not None:
        candidates = [c for c in candidates if c[0] == img_resolution]
    elif unet_kwargs is not None and any(n == unet_kwargs['dim'] for n, _ in candidates):
        candidates = [c for c in candidates if c[0] == unet_kwargs['dim']]       # The reference sets D = N.
    if not candidates:
        form = 'C*2N' if spec.rule == 'hebbian' else 'C*(2N+1) or C*3N (vector learning rate)'
        r.fail(f'{spec.kv}.weight has {rows} rows, expected {form} with C={C}' + (f', N={img_resolution}' if img_resolution else ''))
    N, vector_lr = candidates[0]
    origin['img_resolution'] = (f'{spec.kv} rows = C*(2N+r)' + (', read with a scalar learning rate (also valid: vector)' if len(candidates) > 1 else '')
                                if img_resolution is None else 'option (consistent with the kv rows)')
    origin['vector_lr'] = f'{spec.kv} rows'
    if unet_kwargs is not None and N % 2 ** (len(unet_kwargs['dim_mults']) - 1) != 0:
        r.fail(f'image side {N} is not divisible by 2^{len(unet_kwargs["dim_mults"]) - 1} as the U-Net needs')
    return N, vector_lr

def infer_generator_kwargs(
    state:           dict,          # Reference generator state (no prefix, no mod_dict).
    model_type:      str,           # Key of MODEL_TYPES.
    where:           str,           # File name for error messages.
    num_steps:       int = None,    # T; None = inferred (v2) or V1_DEFAULT_NUM_STEPS (v1).
    img_resolution:  int = None,    # N; None = inferred (ambiguous cases: scalar learning rate).
    img_channels:    int = None,    # C; None = from the U-Net, else DEFAULT_IMG_CHANNELS.
    key_softmax:     bool = None,   # None = the model type's training setting.
    out_tanh:        bool = True,   # Image = tanh(W) (and tanh on the U-Net output).
    input_tanh:      bool = True,   # v2: tanh on the input generator.
    value_tanh:      bool = False,  # tanh on values.
    raw_lr:          bool = False,  # Learning rate = raw logit instead of sigmoid.
    unet_input_tanh: bool = True,   # tanh on the U-Net input.
) -> tuple[dnnlib.EasyDict, dict]:
    """networks.fpa.Generator kwargs, and {hyperparameter: how it was determined}."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f'unknown model type "{model_type}"; expected one of {", ".join(MODEL_TYPES)}')
    spec = MODEL_TYPES[model_type]
    expected_modules = _modules_of(spec)
    found_modules = {_module_of(name) for name in state}
    if not expected_modules <= found_modules or found_modules - expected_modules - OPTIONAL_MODULES:
        missing, extra = expected_modules - found_modules, found_modules - expected_modules - OPTIONAL_MODULES
        raise ValueError(f'{where}: not a {model_type} generator (missing {", ".join(sorted(missing)) or "nothing"}; '
                         f'unexpected {", ".join(sorted(extra)) or "nothing"})')
    origin = {}
    r = _ShapeReader(state, where, model_type)
    L, H, rnn_input_dim = _infer_lstm(r, origin)
    kwargs, z_dim, T = _infer_inputs(r, spec, num_steps, input_tanh, rnn_input_dim, origin)
    if spec.latent_to_init:
        r.expect('latent_to_init.weight', [2 * L * H, z_dim], f'initial (h, c) of {L} layer(s) of size {H} from a latent of size {z_dim}')
        r.expect('latent_to_init.bias', [2 * L * H], 'initial LSTM state')

    unet_kwargs, unet_channels = _infer_unet(r, spec, origin)
    if img_channels is not None and unet_channels is not None and img_channels != unet_channels:
        r.fail(f'--img-channels={img_channels} contradicts the U-Net, which has {unet_channels} channels')
    C = unet_channels or img_channels or DEFAULT_IMG_CHANNELS
    origin['img_channels'] = 'u_net.init_conv' if unet_channels else 'option' if img_channels else f'default {DEFAULT_IMG_CHANNELS} (RGB)'

    N, vector_lr = _infer_image_side(r, spec, C, H, img_channels, img_resolution, unet_kwargs, unet_channels, origin)

    kwargs.update(
        z_dim           = z_dim,
        c_dim           = 0,
        img_resolution  = N,
        img_channels    = C,
        num_steps       = T,
        rule            = spec.rule,
        input_generator = spec.input_generator,
        hidden_dim      = H,
        num_layers      = L,
        latent_to_init  = spec.latent_to_init,
        key_softmax     = spec.key_softmax if key_softmax is None else key_softmax,
        value_tanh      = value_tanh,
        lr_activation   = 'raw' if raw_lr else 'sigmoid',
        vector_lr       = vector_lr,
        out_tanh        = out_tanh,
        out_unit_range  = True,     # The reference trained against [0, 1] images and shows clamp(x, 0, 1).
        painter_impl    = PAINTER_IMPL[spec.rule],
        unet_kwargs     = unet_kwargs,
        unet_input_tanh = unet_input_tanh,
    )
    origin.update(key_softmax='option' if key_softmax is not None else f'{model_type} default',
                  value_tanh='option', lr_activation='option', out_tanh='option', unet_input_tanh='option',
                  out_unit_range='the reference trains against [0, 1] images: ours = 2 * clamp(x, 0, 1) - 1')
    return kwargs, origin

def _side_candidates(rows: int, C: int, spec: dnnlib.EasyDict) -> list[tuple[int, bool]]:
    """(N, vector_lr) that make rows = C*(2N + r) key/value(/rate) rows, the paper's scalar
    learning rate (r = 1) first; r = 0 for Hebbian, r = N for a vector rate (v1 or v2)."""
    if rows % C != 0:
        return []
    per_channel = rows // C
    if spec.rule == 'hebbian':
        return [(per_channel // 2, False)] if per_channel % 2 == 0 else []
    candidates = [((per_channel - 1) // 2, False)] if per_channel % 2 == 1 and per_channel >= 3 else []
    candidates += [(per_channel // 3, True)] if per_channel % 3 == 0 else []
    return candidates

#----------------------------------------------------------------------------
# Building the generators.

OURS_ONLY = ('mapping.w_avg',)      # Ours without a reference counterpart: kept as constructed (zeros).

def build_generator(kwargs: dict, state: dict, where: str, label: str) -> torch.nn.Module:
    """networks.fpa.Generator(**kwargs) with every tensor copied by explicit name mapping,
    built only after persistence.check_init_kwargs has bounded what kwargs ask for against the
    tensors the file holds (by the shapes of a construction with fake tensors)."""
    targets = {}
    for name in state:
        try:
            targets[name] = generator_name(name)
        except ValueError:
            raise ValueError(f'{where}: {label}.{name} has no counterpart in networks.fpa.Generator') from None
    try:
        persistence.check_init_kwargs(fpa.Generator, kwargs, {targets[k]: v for k, v in state.items()}, where)
    except (TypeError, ValueError, AssertionError) as err:
        message = ' '.join(str(err).split())
        raise ValueError(message if message.startswith(where) else f'{where}: {message[:300]}') from None
    G = fpa.Generator(**kwargs)
    ours = G.state_dict()
    mapped = {}
    for name, tensor in state.items():
        target = targets[name]
        if target not in ours:
            raise ValueError(f'{where}: {label}.{name} maps to "{target}", which the inferred generator does not have')
        if tuple(tensor.shape) != tuple(ours[target].shape):
            raise ValueError(f'{where}: {label}.{name} has shape {list(tensor.shape)}, expected {list(ours[target].shape)} for {target}')
        if not tensor.is_floating_point():
            raise ValueError(f'{where}: {label}.{name} has dtype {tensor.dtype}, expected a floating-point tensor')
        mapped[target] = tensor.detach().to(ours[target].dtype)
    unfilled = sorted(set(ours) - set(mapped) - set(OURS_ONLY))
    if unfilled:
        raise ValueError(f'{where}: {label} lacks parameters for {", ".join(unfilled[:4])}' + (' ...' if len(unfilled) > 4 else ''))
    for name in OURS_ONLY:
        mapped[name] = ours[name]
    G.load_state_dict(mapped, strict=True)
    return G.eval().requires_grad_(False)

def convert_reference_checkpoint(
    checkpoint:     Any,            # The loaded torch file: a dict with 'GAN'.
    where:          str = 'checkpoint', # File name for error messages.
    model_type:     str = None,     # None = inferred from the parameter names.
    **options,                      # num_steps, img_resolution, img_channels and the flags of infer_generator_kwargs.
) -> dnnlib.EasyDict:
    """EasyDict(G, G_ema, D=None, augment_pipe=None, training_set_kwargs=None, legacy_source)."""
    G_state, GE_state = split_generator_states(checkpoint, where)
    inferred_type = infer_model_type(G_state, where)
    if model_type is not None and model_type != inferred_type:
        if model_type not in MODEL_TYPES:
            raise ValueError(f'unknown model type "{model_type}"; expected one of {", ".join(MODEL_TYPES)}')
        raise ValueError(f'{where}: --model-type={model_type} does not match the checkpoint, whose parameters are those of {inferred_type}')
    model_type = inferred_type
    kwargs, origin = infer_generator_kwargs(G_state, model_type, where, **options)
    G = build_generator(kwargs, G_state, where, 'G')
    G_ema = build_generator(kwargs, GE_state if GE_state is not None else G_state, where, 'GE' if GE_state is not None else 'G')
    source = dict(
        format      = 'fpainter reference checkpoint',
        file        = os.path.basename(where),
        model_type  = model_type,
        ema         = 'GE' if GE_state is not None else 'none in checkpoint; G_ema = G',
        origin      = origin,
        version     = str(checkpoint.get('version')) if isinstance(checkpoint.get('version'), (str, int, float)) else None,
    )
    return dnnlib.EasyDict(G=G, G_ema=G_ema, D=None, augment_pipe=None, training_set_kwargs=None, legacy_source=source)


#----------------------------------------------------------------------------
