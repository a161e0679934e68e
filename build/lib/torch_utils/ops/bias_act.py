"""Fused bias + activation + gain + clamp, the nonlinearity of every StyleGAN2 layer
(Karras et al., CVPR 2020; `conv_clamp` from StyleGAN2-ADA, NeurIPS 2020, Appendix D.2):

    y = clamp(act(x + b) * gain, -clamp, clamp)

with `b` broadcast along dimension `dim` of `x`.

Implementations (`impl`):
- 'ref': plain torch ops, differentiable to any order. Used off CUDA.
- 'cuda': the compiled plugin (bias_act.cpp/.cu, built by torch_utils/custom_ops.py),
  CUDA tensors only, chosen by default when it builds. Its kernel evaluates, at z = x + b,
  either y = clamp(gain * act(z)) or dy times the first or the second derivative of that
  map; the autograd Functions below compose those into first and second derivatives
  (enough for R1 and path-length regularisation). A third derivative raises an error.
  The backward keeps x (and b), not y, so every activation shares one code path.
"""


import os

import numpy as np
import torch

from dnnlib import EasyDict
from torch_utils import custom_ops

#----------------------------------------------------------------------------
# The activations; `cuda_idx` is the kernel's switch value (bias_act.h).

activation_funcs = {
    'linear':   EasyDict(func=lambda x, **_:        x,                                        def_alpha=0,   def_gain=1,            cuda_idx=1),
    'relu':     EasyDict(func=lambda x, **_:        torch.nn.functional.relu(x),              def_alpha=0,   def_gain=np.sqrt(2),   cuda_idx=2),
    'lrelu':    EasyDict(func=lambda x, alpha, **_: torch.nn.functional.leaky_relu(x, alpha), def_alpha=0.2, def_gain=np.sqrt(2),   cuda_idx=3),
    'tanh':     EasyDict(func=lambda x, **_:        torch.tanh(x),                            def_alpha=0,   def_gain=1,            cuda_idx=4),
    'sigmoid':  EasyDict(func=lambda x, **_:        torch.sigmoid(x),                         def_alpha=0,   def_gain=1,            cuda_idx=5),
    'elu':      EasyDict(func=lambda x, **_:        torch.nn.functional.elu(x),               def_alpha=0,   def_gain=1,            cuda_idx=6),
    'selu':     EasyDict(func=lambda x, **_:        torch.nn.functional.selu(x),              def_alpha=0,   def_gain=1,            cuda_idx=7),
    'softplus': EasyDict(func=lambda x, **_:        torch.nn.functional.softplus(x),          def_alpha=0,   def_gain=1,            cuda_idx=8),
    'swish':    EasyDict(func=lambda x, **_:        torch.sigmoid(x) * x,                     def_alpha=0,   def_gain=np.sqrt(2),   cuda_idx=9),
}

#----------------------------------------------------------------------------

def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl=None):
    """Add `b` (1-D, length x.shape[dim]) along `dim`, apply `act`, multiply by `gain`
    (None = the activation's default: sqrt(2) for relu/lrelu/swish, else 1) and clamp to
    [-clamp, clamp] (None = no clamping). `alpha` is the lrelu slope (default 0.2)."""
    spec = _check_args(x, b, dim, act, clamp)
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = float(clamp if clamp is not None else -1)
    if impl is None:
        impl = _choose_impl(x)
    if impl == 'ref':
        return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)
    if impl == 'cuda':
        if not x.is_cuda:
            raise ValueError('bias_act: impl=\'cuda\' needs a CUDA tensor')
        _plugin() # Raises custom_ops.PluginUnavailable with the reason.
        cfg = (dim, activation_funcs[act].cuda_idx, alpha, gain, clamp)
        return _BiasActCuda.apply(x, b, cfg)
    raise ValueError(f'bias_act: unknown impl {impl!r}; expected None, \'ref\' or \'cuda\'')

def _check_args(x, b, dim, act, clamp) -> EasyDict:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f'bias_act: x must be a tensor, got {type(x).__name__}')
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown act {act!r}; expected one of {", ".join(activation_funcs)}')
    if clamp is not None and not clamp >= 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp!r}')
    if b is not None:
        if not (0 <= dim < x.ndim):
            raise ValueError(f'bias_act: dim={dim} is out of range for x of shape {list(x.shape)}')
        if not isinstance(b, torch.Tensor) or b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: b must be a 1-D tensor of length x.shape[{dim}] = {x.shape[dim]}, got '
                             f'{list(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__}')
    return activation_funcs[act]

def _choose_impl(x: torch.Tensor) -> str:
    if x.is_cuda:
        try:
            _plugin()
            return 'cuda'
        except custom_ops.PluginUnavailable:
            pass # Reported once by custom_ops; use the reference.
    return 'ref'

def _plugin():
    return custom_ops.get_plugin('bias_act_plugin', sources=['bias_act.cpp', 'bias_act.cu'], headers=['bias_act.h'],
                                 source_dir=os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Reference implementation: plain torch ops, any order of derivative.

def _bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = activation_funcs[act].func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

#----------------------------------------------------------------------------
# CUDA implementation. With z = x + b and F(z) = clamp(gain * act(z)):
#   forward        y  = F(z)                      (kernel grad=0)
#   backward       dz = dy * F'(z)                (kernel grad=1), dx = dz, db = sum of dz
#   2nd backward   d(dy) = ddz * F'(z)            (kernel grad=1)
#                  d(z)  = ddz * dy * F''(z)      (kernel grad=2)

def _empty_like(x: torch.Tensor) -> torch.Tensor:
    return torch.empty([0], dtype=x.dtype, device=x.device)

def _sum_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    return t.sum(dim=[i for i in range(t.ndim) if i != dim])

class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, cfg): # pylint: disable=arguments-differ
        x = x.contiguous()
        b = _empty_like(x) if b is None else b.to(x.dtype).contiguous()
        ctx.save_for_backward(x, b)
        ctx.cfg = cfg
        return _plugin().bias_act(x, b, _empty_like(x), 0, *cfg)

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        x, b = ctx.saved_tensors
        dz = _BiasActCudaGrad.apply(dy.contiguous(), x, b, ctx.cfg)
        dx = dz if ctx.needs_input_grad[0] else None
        db = _sum_except(dz, ctx.cfg[0]) if ctx.needs_input_grad[1] else None
        return dx, db, None

class _BiasActCudaGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dy, x, b, cfg): # pylint: disable=arguments-differ
        ctx.save_for_backward(dy, x, b)
        ctx.cfg = cfg
        return _plugin().bias_act(x, b, dy, 1, *cfg)

    @staticmethod
    def backward(ctx, ddz): # pylint: disable=arguments-differ
        if torch.is_grad_enabled():
            raise RuntimeError('bias_act: the CUDA implementation has first and second derivatives only; '
                               'use impl=\'ref\' for higher orders')
        dy, x, b = ctx.saved_tensors
        ddz = ddz.contiguous()
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:
            d_dy = _plugin().bias_act(x, b, ddz, 1, *ctx.cfg)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            d_z = _plugin().bias_act(x, b, (ddz * dy).contiguous(), 2, *ctx.cfg)
            d_x = d_z if ctx.needs_input_grad[1] else None
            d_b = _sum_except(d_z, ctx.cfg[0]) if ctx.needs_input_grad[2] and b.numel() > 0 else None
        return d_dy, d_x, d_b, None

#----------------------------------------------------------------------------
