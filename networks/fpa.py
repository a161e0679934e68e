"""Fast Weight Painters (FPA): images as weight matrices.

"Images as Weight Matrices: Sequential Image Generation Through Synaptic Learning Rules",
Irie & Schmidhuber, ICLR 2023. A slow net (an LSTM) emits, at each of T steps and for each
colour channel, a key k_t, a value v_t and a learning rate beta_t; a synaptic learning rule
writes them into an N x N matrix as rank-1 updates, and after T steps the matrix is the image
(value index = image row, key index = image column). The exact model this file computes is
specified in docs/fpa-model.md and documented in docs/fpa.md.

Painters (free functions, keys/values [B, C, T, N], learning rates [B, C, T, r], r = 1 or N):
    delta_rule_sequential   the obvious loop (docs/fpa-model.md §1), the reference twin
    delta_rule_parallel     unit lower-triangular solve (docs/fpa-model.md §2), what runs
    hebbian_rule            W = sum_t v_t k_t^T as one matmul; hebbian_rule_sequential its loop
    oja_rule_sequential     Oja's rule (no parallel form)
Each returns a `Painting(W, U, K)`: W [B, C, N, N] and rank-1 factors U, K [B, C, T, N] with
update_t = U[:, :, t] K[:, :, t]^T, so W = sum_t update_t and the partial images are prefix sums.

Parameter names are a compatibility promise (network files, legacy.py maps the reference
checkpoints onto them): the table of reference and our names is in docs/fpa.md.
"""

from typing import NamedTuple

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------
# Painters: learning rules that write rank-1 updates into the image matrix.

class Painting(NamedTuple):
    W: torch.Tensor     # [B, C, N, N] the painted matrix (value index = row, key index = column).
    U: torch.Tensor     # [B, C, T, N] left factors: update_t = U_t K_t^T.
    K: torch.Tensor     # [B, C, T, N] right factors (the keys actually written).

def _check_painter_inputs(keys: torch.Tensor, values: torch.Tensor, lrs: torch.Tensor | None) -> None:
    misc.assert_shape(keys, [None, None, None, None], name='keys')
    B, C, T, N = keys.shape
    misc.assert_shape(values, [B, C, T, N], name='values')
    if lrs is not None:
        misc.assert_shape(lrs, [B, C, T, None], name='learning rates')
        if lrs.shape[-1] not in (1, N):
            raise AssertionError(f'learning rates: last dimension must be 1 or N={N}, got {lrs.shape[-1]}')

def outer_sum(U: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """sum_t U_t K_t^T: [B, C, T, N] x [B, C, T, N] -> [B, C, N, N] (one batched matmul)."""
    return U.transpose(-1, -2) @ K

def delta_rule_sequential(keys: torch.Tensor, values: torch.Tensor, lrs: torch.Tensor) -> Painting:
    """The delta rule as written in docs/fpa-model.md §1, one step at a time (reference twin).
    t = 0: W_0 = v_0 k_0^T (no learning rate, nothing removed);
    t >= 1: u_t = beta_t * (v_t - W_{t-1} k_t), W_t = W_{t-1} + u_t k_t^T."""
    _check_painter_inputs(keys, values, lrs)
    B, C, T, N = keys.shape
    W = keys.new_zeros([B, C, N, N])
    us = []
    for t in range(T):
        k, v = keys[:, :, t], values[:, :, t]                           # [B, C, N]
        u = v if t == 0 else lrs[:, :, t] * (v - (W @ k.unsqueeze(-1)).squeeze(-1))
        W = W + u.unsqueeze(-1) * k.unsqueeze(-2)
        us.append(u)
    return Painting(W, torch.stack(us, dim=2), keys)

def delta_rule_parallel(keys: torch.Tensor, values: torch.Tensor, lrs: torch.Tensor) -> Painting:
    """The delta rule in parallel form (docs/fpa-model.md §2). With beta_0 := 1 and W_{-1} = 0 the
    updates satisfy u_t + beta_t sum_{s<t} (k_s . k_t) u_s = beta_t v_t, i.e.
    (I + diag(beta) A) U = diag(beta) V with A the strictly lower triangle of K K^T: one unit
    lower-triangular solve per channel (per value row with a vector learning rate)."""
    _check_painter_inputs(keys, values, lrs)
    B, C, T, N = keys.shape
    beta = torch.cat([torch.ones_like(lrs[:, :, :1]), lrs[:, :, 1:]], dim=2)   # [B, C, T, r], beta_0 := 1
    A = (keys @ keys.transpose(-1, -2)).tril(-1)                                # [B, C, T, T]
    rhs = beta * values                                                          # [B, C, T, N]
    if beta.shape[-1] == 1:
        # The identity is implied by unitriangular=True: only the strict lower triangle is read.
        U = torch.linalg.solve_triangular(beta * A, rhs, upper=False, unitriangular=True)
    else:
        # Value row i has its own learning rates beta[..., i]: system (I + diag(beta_i) A) U_i = beta_i V_i.
        M = beta.transpose(-1, -2).unsqueeze(-1) * A.unsqueeze(2)                # [B, C, N, T, T]
        U = torch.linalg.solve_triangular(M, rhs.transpose(-1, -2).unsqueeze(-1), upper=False, unitriangular=True)
        U = U.squeeze(-1).transpose(-1, -2)                                      # [B, C, T, N]
    return Painting(outer_sum(U, keys), U, keys)

def hebbian_rule(keys: torch.Tensor, values: torch.Tensor) -> Painting:
    """Purely additive Hebbian rule W = sum_t v_t k_t^T, as one matmul (no learning rate)."""
    _check_painter_inputs(keys, values, None)
    return Painting(outer_sum(values, keys), values, keys)

def hebbian_rule_sequential(keys: torch.Tensor, values: torch.Tensor) -> Painting:
    """The Hebbian rule one step at a time (reference twin of `hebbian_rule`)."""
    _check_painter_inputs(keys, values, None)
    B, C, T, N = keys.shape
    W = keys.new_zeros([B, C, N, N])
    for t in range(T):
        W = W + values[:, :, t].unsqueeze(-1) * keys[:, :, t].unsqueeze(-2)
    return Painting(W, values, keys)

def oja_rule_sequential(keys: torch.Tensor, values: torch.Tensor, lrs: torch.Tensor, key_softmax: bool = True) -> Painting:
    """Oja's rule (docs/fpa-model.md §1): k'_t = k_t - W_{t-1}^T v_t, softmax'd again when
    key_softmax; W_t = W_{t-1} + (beta_t v_t) k'_t^T, learning rate applied at every step.
    With W_{-1} = 0 the first step is k'_0 = softmax(k_0): given already-softmaxed keys, the
    key softmax is applied twice at t = 0, exactly as the reference does. No parallel form."""
    _check_painter_inputs(keys, values, lrs)
    B, C, T, N = keys.shape
    W = keys.new_zeros([B, C, N, N])
    us, ks = [], []
    for t in range(T):
        v = values[:, :, t]                                                  # [B, C, N]
        k = keys[:, :, t] - (v.unsqueeze(-2) @ W).squeeze(-2)                # k_t - W^T v_t
        if key_softmax:
            k = k.softmax(dim=-1)
        u = lrs[:, :, t] * v
        W = W + u.unsqueeze(-1) * k.unsqueeze(-2)
        us.append(u)
        ks.append(k)
    return Painting(W, torch.stack(us, dim=2), torch.stack(ks, dim=2))

#----------------------------------------------------------------------------
# Seeing the painting (docs/fpa-model.md §5).

def rank1_updates(painting: Painting) -> torch.Tensor:
    """The T rank-1 update frames [B, T, C, N, N] of a painting."""
    return (painting.U.unsqueeze(-1) * painting.K.unsqueeze(-2)).transpose(1, 2)

def display_frames(frames: torch.Tensor, final: torch.Tensor, out_tanh: bool = True) -> torch.Tensor:
    """Display normalisation of docs/fpa-model.md §5: rescale every frame [C, N, N] of `frames`
    [B, T, C, N, N] to the Frobenius norm of the final matrix `final` [B, C, N, N] (norm over
    all channels together, so colour balance holds), then tanh when out_tanh. An all-zero
    frame stays zero. Returns the same shape as `frames`, values in [-1, 1] with out_tanh."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 5:
        raise ValueError(f'display_frames: frames must be a [B, T, C, N, N] tensor, got {getattr(frames, "shape", type(frames).__name__)}')
    B, T, C, H, W = frames.shape
    if not isinstance(final, torch.Tensor) or tuple(final.shape) != (B, C, H, W):
        raise ValueError(f'display_frames: final must be a [{B}, {C}, {H}, {W}] tensor, got {getattr(final, "shape", type(final).__name__)}')
    final_norm = final.flatten(1).norm(dim=1).reshape(B, 1, 1, 1, 1)
    frame_norm = frames.flatten(2).norm(dim=2).reshape(B, T, 1, 1, 1)
    scale = torch.where(frame_norm > 0, final_norm / frame_norm.clamp_min(torch.finfo(frames.dtype).tiny), 0)
    out = frames * scale
    return out.tanh() if out_tanh else out

#----------------------------------------------------------------------------
# Painter table: (rule, impl) -> painter(keys, values, lrs, key_softmax) -> Painting.
# The key softmax of delta and Hebbian happens before painting; Oja applies it again inside.

PAINTERS = {
    ('delta',   'parallel'):   lambda keys, values, lrs, key_softmax: delta_rule_parallel(keys, values, lrs),
    ('delta',   'sequential'): lambda keys, values, lrs, key_softmax: delta_rule_sequential(keys, values, lrs),
    ('hebbian', 'parallel'):   lambda keys, values, lrs, key_softmax: hebbian_rule(keys, values),
    ('hebbian', 'sequential'): lambda keys, values, lrs, key_softmax: hebbian_rule_sequential(keys, values),
    ('oja',     'sequential'): lambda keys, values, lrs, key_softmax: oja_rule_sequential(keys, values, lrs, key_softmax=key_softmax),
}
RULES = ('delta', 'hebbian', 'oja')
RULES_WITHOUT_LR = ('hebbian',)                 # Their projection emits keys and values only (H -> C*2N).
INPUT_GENERATORS = ('v1', 'v2')
LR_ACTIVATIONS = {'sigmoid': torch.sigmoid, 'raw': lambda x: x}
PAINTER_IMPLS = ('parallel', 'sequential')

#----------------------------------------------------------------------------
# Mapping: z (+ label embedding) -> T identical per-step codes; truncation; w_avg.

class MappingNetwork(torch.nn.Module):
    def __init__(self,
        z_dim,                      # Latent size D_z (= w_dim).
        c_dim,                      # Conditioning label size, 0 = unconditional.
        num_ws,                     # Number of per-step codes (= painting steps T).
        w_avg_beta = 0.998,         # Decay of the running mean of w used by truncation.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.num_ws = num_ws
        self.w_avg_beta = w_avg_beta
        if c_dim > 0:
            self.embed = torch.nn.Linear(c_dim, z_dim, bias=False)   # A label embedding (one-hot c selects a column).
            torch.nn.init.normal_(self.embed.weight)
        self.register_buffer('w_avg', torch.zeros([z_dim]))

    def _check_inputs(self, z, c):
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.z_dim or not z.is_floating_point():
            got = f'shape {list(z.shape)} dtype {z.dtype}' if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f'FPA Generator: z must be a floating-point tensor of shape [N, {self.z_dim}], got {got}')
        if self.c_dim == 0:
            if c is not None and (not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[1] != 0):
                got = f'shape {list(c.shape)}' if isinstance(c, torch.Tensor) else type(c).__name__
                raise ValueError(f'FPA Generator: unconditional (c_dim=0): c must be None or an [N, 0] tensor, got {got}')
            return
        if not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[0] != z.shape[0] or c.shape[1] != self.c_dim or not c.is_floating_point():
            got = f'shape {list(c.shape)} dtype {c.dtype}' if isinstance(c, torch.Tensor) else 'None' if c is None else type(c).__name__
            raise ValueError(f'FPA Generator: conditional (c_dim={self.c_dim}): c must be a floating-point tensor of shape [{z.shape[0]}, {self.c_dim}], got {got}')

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        self._check_inputs(z, c)
        z = z.to(self.w_avg.dtype)      # The network's precision, whatever z's (upstream's scripts pass float64 z).
        w = z + self.embed(c.to(z.dtype)) if self.c_dim > 0 else z                  # [N, z_dim]
        if update_emas:
            self.w_avg.copy_(w.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat([1, self.num_ws, 1])                              # [N, T, z_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            w_avg = self.w_avg.to(ws.dtype)
            ws = torch.cat([w_avg.lerp(ws[:, :cutoff], truncation_psi), ws[:, cutoff:]], dim=1)
        return ws

    def extra_repr(self):
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, num_ws={self.num_ws:d}'

def _linear_nd(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer(x) over the last axis as one 2-D matmul. (torch.nn.functional.linear on a 3-D input
    picks a different kernel depending on whether the weights require grad, which would make a
    frozen copy of the generator differ from the original in the last float32 bit.)"""
    return layer(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], layer.out_features)

#----------------------------------------------------------------------------
# Synthesis: per-step codes -> slow net (LSTM) -> keys, values, learning rates -> painter
# -> image (-> U-Net refiner).

class SynthesisNetwork(torch.nn.Module):
    """Per-step codes -> slow net -> keys, values, learning rates -> painter -> image. Every FPA
    option is defined, defaulted and validated here, once (Generator passes them through as
    synthesis kwargs, as StyleGAN2's Generator does). Defaults = the paper's 64x64 FPA."""
    def __init__(self,
        w_dim,                          # Per-step code size (= z_dim).
        img_resolution,                 # Image side N (height = width = N).
        img_channels,                   # Colour channels C (1 or 3; any C works).
        num_steps        = 64,          # Painting steps T; also num_ws.
        rule             = 'delta',     # Learning rule: 'delta' | 'hebbian' | 'oja'.
        input_generator  = 'v2',        # Slow-net input: 'v1' (code as LSTM input) | 'v2' (per-step latents).
        step_latent_dim  = 8,           # v2: per-step latent size m.
        step_input_dim   = 128,         # v2: LSTM input size d_in.
        hidden_dim       = 1024,        # LSTM hidden size H.
        num_layers       = 1,           # LSTM layers L.
        latent_to_init   = True,        # Initial LSTM state from the code (v1 requires it).
        input_tanh       = True,        # v2: tanh on the input generator.
        position_table   = False,       # v2: learned per-step table added to the LSTM inputs.
        key_softmax      = True,        # Softmax over each key's N entries.
        value_tanh       = False,       # tanh on values.
        lr_activation    = 'sigmoid',   # Learning-rate activation: 'sigmoid' | 'raw' (ignored by 'hebbian').
        vector_lr        = False,       # One learning rate per value row instead of one per channel.
        out_tanh         = True,        # Image = tanh(W) (and tanh on the U-Net output).
        out_unit_range   = False,       # Trained against [0, 1] images (converted reference checkpoints): image = 2 * clamp(x, 0, 1) - 1.
        painter_impl     = 'parallel',  # 'parallel' (docs/fpa-model.md §2) | 'sequential' (reference loop; 'oja' has only this).
        unet_kwargs      = None,        # FPA/U-Net: kwargs of networks.unet.UNet; None = plain FPA.
        unet_input_tanh  = True,        # FPA/U-Net: tanh on the U-Net input W.
        train_fpa        = True,        # FPA/U-Net: False freezes the FPA and stops gradients into it.
    ):
        super().__init__()
        def check(ok, option, value, expected):
            if not ok:
                raise ValueError(f'FPA Generator: {option}={value!r}: expected {expected}')
        for name, value in dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, num_steps=num_steps,
                                step_latent_dim=step_latent_dim, step_input_dim=step_input_dim, hidden_dim=hidden_dim, num_layers=num_layers).items():
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, 'z_dim' if name == 'w_dim' else name, value, 'a positive integer')
        check(rule in RULES, 'rule', rule, f'one of {", ".join(RULES)}')
        check(input_generator in INPUT_GENERATORS, 'input_generator', input_generator, f'one of {", ".join(INPUT_GENERATORS)}')
        check(lr_activation in LR_ACTIVATIONS, 'lr_activation', lr_activation, f'one of {", ".join(LR_ACTIVATIONS)}')
        check(painter_impl in PAINTER_IMPLS, 'painter_impl', painter_impl, f'one of {", ".join(PAINTER_IMPLS)}')
        check((rule, painter_impl) in PAINTERS, 'painter_impl', painter_impl, f"'sequential' for rule={rule!r} (it has no parallel form)")
        check(not (vector_lr and rule in RULES_WITHOUT_LR), 'vector_lr', vector_lr, f'False for rule={rule!r} (it has no learning rates)')
        check(latent_to_init or input_generator == 'v2', 'latent_to_init', latent_to_init, "True for input_generator='v1' (v1 always starts from the latent)")
        check(not position_table or input_generator == 'v2', 'position_table', position_table, "False for input_generator='v1'")
        check(unet_kwargs is None or isinstance(unet_kwargs, dict), 'unet_kwargs', unet_kwargs, 'None or a dict of networks.unet.UNet options')
        check(train_fpa or unet_kwargs is not None, 'train_fpa', train_fpa, 'True without a U-Net (freezing the FPA leaves nothing to train)')

        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_steps = num_steps
        self.rule = rule
        self.input_generator_kind = input_generator
        self.step_latent_dim = step_latent_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.input_tanh = input_tanh
        self.key_softmax = key_softmax
        self.value_tanh = value_tanh
        self.lr_activation = lr_activation
        self.out_tanh = out_tanh
        self.out_unit_range = out_unit_range
        self.painter_impl = painter_impl
        self.unet_input_tanh = unet_input_tanh
        self.train_fpa = train_fpa
        self.num_lrs = 0 if rule in RULES_WITHOUT_LR else img_resolution if vector_lr else 1   # r
        C, N, T, H, L = img_channels, img_resolution, num_steps, hidden_dim, num_layers

        # Slow net inputs.
        self.latent_to_init = torch.nn.Linear(w_dim, 2 * L * H) if latent_to_init else None
        if input_generator == 'v2':
            self.input_generator = torch.nn.Linear(w_dim, T * step_latent_dim)
            self.per_time_linear_input = torch.nn.Linear(step_latent_dim, step_input_dim)
            self.position_table = torch.nn.Parameter(torch.zeros([T, step_input_dim])) if position_table else None
        rnn_input_dim = step_input_dim if input_generator == 'v2' else w_dim
        self.decoder_rnn = torch.nn.LSTM(rnn_input_dim, H, num_layers=L, batch_first=True)
        self.kvb_net = torch.nn.Linear(H, C * (2 * N + self.num_lrs))

        # Initialisation of the reference (docs/fpa-model.md §3); the Hebbian model keeps PyTorch's defaults.
        if rule not in RULES_WITHOUT_LR:
            for param in self.decoder_rnn.parameters():
                torch.nn.init.uniform_(param, -1 / np.sqrt(H), 1 / np.sqrt(H))
            bound = 1 / np.sqrt(C * (2 * N + 1))
            torch.nn.init.uniform_(self.kvb_net.weight, -bound, bound)
            torch.nn.init.uniform_(self.kvb_net.bias, -bound, bound)
        if input_generator == 'v2':
            torch.nn.init.kaiming_normal_(self.per_time_linear_input.weight, mode='fan_in', nonlinearity='relu')
        if input_generator == 'v1' and latent_to_init:    # As the reference's v1 models (std sqrt(2 / z_dim)).
            torch.nn.init.kaiming_normal_(self.latent_to_init.weight, mode='fan_in', nonlinearity='relu')

        # FPA/U-Net refiner (docs/fpa-model.md §4).
        self.unet = None
        if unet_kwargs is not None:
            import networks     # pylint: disable=import-outside-toplevel  (here: exports run this file's source without the package, networks/export.py)
            self.unet = dnnlib.util.construct_class_by_name(class_name=networks.UNET_CLASS, img_channels=C, **unet_kwargs)

    def fpa_parameters(self):
        """Every parameter except the U-Net's (the part frozen by train_fpa=False)."""
        return [param for name, param in self.named_parameters() if not name.startswith('unet.')]

    def fpa_buffers(self):
        """Every buffer except the U-Net's (fpa_parameters' twin)."""
        return [buf for name, buf in self.named_buffers() if not name.startswith('unet.')]

    def _check_ws(self, ws):
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or ws.shape[1:] != (self.num_steps, self.w_dim) or not ws.is_floating_point():
            got = f'shape {list(ws.shape)} dtype {ws.dtype}' if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise ValueError(f'FPA Generator: ws must be a floating-point tensor of shape [N, {self.num_steps}, {self.w_dim}], got {got}')

    def slow_net(self, ws):
        """Per-step codes [B, T, w_dim] -> keys, values [B, C, T, N] and learning rates
        [B, C, T, r] (None for rules without learning rates), activations applied."""
        B, T, C, N, L, H = ws.shape[0], self.num_steps, self.img_channels, self.img_resolution, self.num_layers, self.hidden_dim
        state = None
        if self.latent_to_init is not None:
            h0, c0 = self.latent_to_init(ws[:, 0]).reshape(B, 2, L, H).permute(1, 2, 0, 3)    # Layer-major halves.
            state = (h0.contiguous(), c0.contiguous())
        if self.input_generator_kind == 'v2':
            # Row t of ws feeds slice [t*m, (t+1)*m) of the input generator: with all rows equal this
            # is exactly Linear(w_dim -> T*m) applied to one code.
            weight = self.input_generator.weight.reshape(T, self.step_latent_dim, self.w_dim)
            x = torch.einsum('btd,tmd->btm', ws, weight) + self.input_generator.bias.reshape(T, self.step_latent_dim)
            x = x.tanh() if self.input_tanh else x
            x = _linear_nd(self.per_time_linear_input, x)                                     # [B, T, d_in]
            x = x + self.position_table if self.position_table is not None else x
        else:
            x = ws                                                                            # [B, T, w_dim]
        h, _ = self.decoder_rnn(x, state)                                                     # [B, T, H]
        out = _linear_nd(self.kvb_net, h)                                                     # [B, T, C*(2N+r)]
        out = out.to(torch.promote_types(out.dtype, torch.float32))                           # Paint in >= float32.
        keys = out[..., :C * N].reshape(B, T, C, N).transpose(1, 2)
        values = out[..., C * N:2 * C * N].reshape(B, T, C, N).transpose(1, 2)
        keys = keys.softmax(dim=-1) if self.key_softmax else keys
        values = values.tanh() if self.value_tanh else values
        lrs = None
        if self.num_lrs > 0:
            lrs = LR_ACTIVATIONS[self.lr_activation](out[..., 2 * C * N:].reshape(B, T, C, self.num_lrs).transpose(1, 2))
        return keys, values, lrs

    def paint_ws_with_inputs(self, ws) -> tuple[Painting, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The painting of per-step codes (W [B, C, N, N] and its rank-1 factors) and what the slow
        net emitted for it: keys, values [B, C, T, N], learning rates [B, C, T, r] or None. Without
        gradients when the FPA is frozen (train_fpa=False), whatever the caller's grad mode."""
        self._check_ws(ws)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_fpa):
            keys, values, lrs = self.slow_net(ws)
            with torch.autocast(device_type=keys.device.type, enabled=False):
                painting = PAINTERS[(self.rule, self.painter_impl)](keys, values, lrs, self.key_softmax)
        misc.assert_shape(painting.W, [ws.shape[0], self.img_channels, self.img_resolution, self.img_resolution], name='W')
        return painting, keys, values, lrs

    def paint_ws(self, ws) -> Painting:
        return self.paint_ws_with_inputs(ws)[0]

    def to_output_range(self, x):
        """This codebase's [-1, 1] images from a network trained against [0, 1] images (the
        reference code, which shows clamp(x, 0, 1)); unchanged otherwise."""
        return x.clamp(0, 1) * 2 - 1 if self.out_unit_range else x

    def fpa_image(self, W):
        return self.to_output_range(W.tanh() if self.out_tanh else W)

    def refine(self, W):
        """FPA/U-Net: final = tanh(U(tanh(W))) with the inner tanh = unet_input_tanh and the outer
        one = out_tanh (docs/fpa-model.md §4). The U-Net replaces the image; no residual."""
        x = W.tanh() if self.unet_input_tanh else W
        img = self.unet(x)
        img = img.to(torch.promote_types(img.dtype, torch.float32))
        return self.to_output_range(img.tanh() if self.out_tanh else img)

    def display(self, frames, final):
        """Frames [B, T, C, N, N] as the image is shown (docs/fpa-model.md §5 and §7): rescaled to
        the norm of the final W, tanh with out_tanh, mapped to [-1, 1] like the output."""
        return self.to_output_range(display_frames(frames, final, out_tanh=self.out_tanh))

    def _apply(self, fn, recurse=True):
        """After .to()/.cuda()/.float(): compact the LSTM's weights into cuDNN's one flat buffer,
        once. Otherwise torch copies them at every call on CUDA and warns that they are "not part
        of single contiguous chunk of memory". A no-op on the CPU."""
        module = super()._apply(fn, recurse)
        self.decoder_rnn.flatten_parameters()
        return module

    def __setstate__(self, state):
        """The same compaction after copy.deepcopy (G_ema, the metrics' copy) or unpickling."""
        super().__setstate__(state)
        self.decoder_rnn.flatten_parameters()

    def forward(self, ws, noise_mode='const', force_fp32=False, update_emas=False):
        _ = noise_mode, force_fp32, update_emas  # Unused: the FPA has no noise inputs and no fp16 layers.
        W = self.paint_ws(ws).W
        return self.fpa_image(W) if self.unet is None else self.refine(W)

    def extra_repr(self):
        return (f'rule={self.rule}, input_generator={self.input_generator_kind}, num_steps={self.num_steps:d}, '
                f'hidden_dim={self.hidden_dim:d}, num_layers={self.num_layers:d}, painter_impl={self.painter_impl}')

#----------------------------------------------------------------------------
# The generator (contract: networks/__init__.py).

@persistence.persistent_class
class Generator(torch.nn.Module):
    supports_freeze_fpa = True      # Capability (train.py --freeze-fpa): train_fpa=False keeps the painter fixed.

    def __init__(self,
        z_dim,                      # Latent size D_z (= w_dim).
        c_dim,                      # Conditioning label size, 0 = unconditional.
        img_resolution,             # Image side N (height = width = N).
        img_channels,               # Colour channels C (1 or 3; any C works).
        w_avg_beta = 0.998,         # Decay of the running mean of w used by truncation.
        **synthesis_kwargs,         # FPA options (num_steps, rule, hidden_dim, ...): see SynthesisNetwork.
    ):
        super().__init__()
        if not (isinstance(c_dim, int) and not isinstance(c_dim, bool) and c_dim >= 0):
            raise ValueError(f'FPA Generator: c_dim={c_dim!r}: expected an integer >= 0')
        if not (isinstance(w_avg_beta, (int, float)) and 0 <= w_avg_beta <= 1):
            raise ValueError(f'FPA Generator: w_avg_beta={w_avg_beta!r}: expected a number in [0, 1]')
        try:
            self.synthesis = SynthesisNetwork(w_dim=z_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        except TypeError as err:    # An option that does not exist.
            raise ValueError(f'FPA Generator: {str(err).replace("SynthesisNetwork.__init__() ", "")}') from None
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = z_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = self.synthesis.num_steps
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, num_ws=self.num_ws, w_avg_beta=w_avg_beta)
        if not self.synthesis.train_fpa:
            for param in self.fpa_parameters():
                param.requires_grad_(False)

    def fpa_parameters(self):
        """The FPA's parameters: mapping (label embedding) and synthesis without the U-Net."""
        return list(self.mapping.parameters()) + self.synthesis.fpa_parameters()

    def fpa_buffers(self):
        """The FPA's buffers (fpa_parameters' twin): mapping's w_avg and synthesis without the U-Net."""
        return list(self.mapping.buffers()) + self.synthesis.fpa_buffers()

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    def paint(self, z, c, truncation_psi=1, truncation_cutoff=None) -> dnnlib.EasyDict:
        """The painting of a batch of latents (docs/fpa-model.md §5), in one pass:
            updates        [B, T, C, N, N]  the rank-1 update added at each step (= written x key_vectors),
            partials       [B, T, C, N, N]  W_t, prefix sums of the updates (partials[:, -1] = W),
            image          [B, C, N, N]     the FPA's image (= G(z, c) for plain FPA),
            refined        [B, C, N, N]     the U-Net's output (= G(z, c) for FPA/U-Net), or None,
            written        [B, T, C, N]     the vector written at each step (delta rule: u_t), along the rows,
            key_vectors    [B, T, C, N]     the key it was written with (Oja: the corrected key), along the columns,
            value_vectors  [B, T, C, N]     the value the slow net emitted (delta rule: the target of u_t),
            lrs            [B, T, C, r]     the learning rates, or None for rules without them.
        Raw tensors; display_frames() shows frames as the image is shown."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis_paint(ws)

    def synthesis_paint(self, ws) -> dnnlib.EasyDict:
        """G.paint from per-step codes ws [B, T, w_dim] (e.g. style-mixed)."""
        painting, _, values, lrs = self.synthesis.paint_ws_with_inputs(ws)
        updates = rank1_updates(painting)
        return dnnlib.EasyDict(
            updates       = updates,
            partials      = updates.cumsum(dim=1),
            image         = self.synthesis.fpa_image(painting.W),
            refined       = None if self.synthesis.unet is None else self.synthesis.refine(painting.W),
            written       = painting.U.transpose(1, 2),
            key_vectors   = painting.K.transpose(1, 2),
            value_vectors = values.transpose(1, 2),
            lrs           = None if lrs is None else lrs.transpose(1, 2),
        )

    def display_frames(self, frames, final):
        """Painting frames [B, T, C, N, N] (updates or partials of G.paint) as the image is shown:
        float in [-1, 1], the last partial equal to the output (docs/fpa-model.md §5)."""
        return self.synthesis.display(frames, final)

#----------------------------------------------------------------------------
