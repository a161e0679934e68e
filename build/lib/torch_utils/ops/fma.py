"""Fused multiply-add `a * b + c` with broadcasting and an unbroadcasting backward, as used
by StyleGAN2's non-fused modulated convolution (Karras et al., CVPR 2020, Eq. 3:
demodulation followed by the noise input).

The forward is one `torch.addcmul`; the backward sums each incoming gradient back to the
shape of its operand. The backward is written in differentiable torch ops, so second
derivatives work.
"""

import torch

#----------------------------------------------------------------------------

def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return _FusedMultiplyAdd.apply(a, b, c)

def _fma_ref(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return a * b + c

#----------------------------------------------------------------------------

class _FusedMultiplyAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, c): # pylint: disable=arguments-differ
        out = torch.addcmul(c, a, b)
        ctx.save_for_backward(a, b)
        ctx.c_shape = c.shape
        return out

    @staticmethod
    def backward(ctx, dout): # pylint: disable=arguments-differ
        a, b = ctx.saved_tensors
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _unbroadcast(dout * b, a.shape)
        if ctx.needs_input_grad[1]:
            db = _unbroadcast(dout * a, b.shape)
        if ctx.needs_input_grad[2]:
            dc = _unbroadcast(dout, ctx.c_shape)
        return da, db, dc

#----------------------------------------------------------------------------
# Sum `x` over the dimensions that broadcasting added or expanded, giving `shape`.

def _unbroadcast(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    extra_dims = x.ndim - len(shape)
    assert extra_dims >= 0
    dims = [i for i in range(x.ndim) if i < extra_dims or (shape[i - extra_dims] == 1 and x.shape[i] > 1)]
    if dims:
        x = x.sum(dim=dims, keepdim=True)
    return x.reshape(shape)

#----------------------------------------------------------------------------
