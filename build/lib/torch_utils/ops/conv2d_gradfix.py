"""Convolution wrappers used by the networks: `conv2d`, `conv_transpose2d` and the
`no_weight_gradients()` context manager of StyleGAN2-ADA (Karras et al., NeurIPS 2020).

Upstream needed a custom autograd chain here because the PyTorch of its time could neither
differentiate the convolution backward twice (needed by R1 and path-length regularisation)
nor skip the weight gradient while computing a gradient with respect to the images. Modern
PyTorch does both natively:

- `convolution_backward` has a derivative formula, so double backward works through
  `torch.nn.functional.conv2d` / `conv_transpose2d` on every device;
- the autograd engine asks each convolution node only for the gradients that lead to the
  requested inputs (`output_mask` of `convolution_backward`), so
  `torch.autograd.grad(logits.sum(), [images])` never computes a weight gradient.

Hence `conv2d` and `conv_transpose2d` are the torch functions themselves, and
`no_weight_gradients()` is a documented no-op marker kept so that the loss can state its
intent; tests/ops/test_conv2d_resample.py checks that such a gradient skips the weight
gradient without it.
"""

import contextlib

import torch

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride,
                                      padding=padding, dilation=dilation, groups=groups)

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding,
                                                output_padding=output_padding, groups=groups, dilation=dilation)

#----------------------------------------------------------------------------

@contextlib.contextmanager
def no_weight_gradients(disable: bool = True):
    """Marks a region whose gradients are taken with respect to activations only (R1, path
    length). A no-op: the autograd engine already skips weight gradients that are not asked
    for (see the module docstring). `disable` is accepted for upstream compatibility."""
    _ = disable # unused
    yield

#----------------------------------------------------------------------------
