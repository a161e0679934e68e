"""Fused bias + activation + gain + clamp, the nonlinearity of every StyleGAN2 layer
(Karras et al., CVPR 2020; `conv_clamp` from StyleGAN2-ADA, NeurIPS 2020, Appendix D.2):

    y = clamp(act(x + b) * gain, -clamp, clamp)

with `b` broadcast along dimension `dim` of `x`.

Implementations (`impl`):
- 'ref': plain torch ops, differentiable to any order. Used off CUDA.
- 'cuda': the compiled plugin (torch_utils/ops/bias_act.cu), CUDA tensors only. Its
  kernel evaluates the activation and the first two derivatives of the activation given
  `x` (and, where cheaper, `y`); the autograd Functions below compose those into first
  and second derivatives. A third derivative raises an error.
"""


import numpy as np
import torch

from dnnlib import EasyDict

#----------------------------------------------------------------------------
# The activations. `cuda_idx` is the kernel's switch value; `ref` says whether the
# kernel's gradient reads the activation's input 'x' or its output 'y'.

activation_funcs = {
    'linear':   EasyDict(func=lambda x, **_:        x,                                        def_alpha=0,   def_gain=1,            cuda_idx=1, ref='',  has_2nd_grad=False),
    'relu':     EasyDict(func=lambda x, **_:        torch.nn.functional.relu(x),              def_alpha=0,   def_gain=np.sqrt(2),   cuda_idx=2, ref='y', has_2nd_grad=False),
    'lrelu':    EasyDict(func=lambda x, alpha, **_: torch.nn.functional.leaky_relu(x, alpha), def_alpha=0.2, def_gain=np.sqrt(2),   cuda_idx=3, ref='y', has_2nd_grad=False),
    'tanh':     EasyDict(func=lambda x, **_:        torch.tanh(x),                            def_alpha=0,   def_gain=1,            cuda_idx=4, ref='y', has_2nd_grad=True),
    'sigmoid':  EasyDict(func=lambda x, **_:        torch.sigmoid(x),                         def_alpha=0,   def_gain=1,            cuda_idx=5, ref='y', has_2nd_grad=True),
    'elu':      EasyDict(func=lambda x, **_:        torch.nn.functional.elu(x),               def_alpha=0,   def_gain=1,            cuda_idx=6, ref='y', has_2nd_grad=True),
    'selu':     EasyDict(func=lambda x, **_:        torch.nn.functional.selu(x),              def_alpha=0,   def_gain=1,            cuda_idx=7, ref='y', has_2nd_grad=True),
    'softplus': EasyDict(func=lambda x, **_:        torch.nn.functional.softplus(x),          def_alpha=0,   def_gain=1,            cuda_idx=8, ref='y', has_2nd_grad=True),
    'swish':    EasyDict(func=lambda x, **_:        torch.sigmoid(x) * x,                     def_alpha=0,   def_gain=np.sqrt(2),   cuda_idx=9, ref='x', has_2nd_grad=True),
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
    raise ValueError(f'bias_act: unknown impl {impl!r}; expected None or \'ref\'')

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
    return 'ref'

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
