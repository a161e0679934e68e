"""Convolution wrappers used by the networks: `conv2d`, `conv_transpose2d` and the
`no_weight_gradients()` context manager of StyleGAN2-ADA (Karras et al., NeurIPS 2020).

Upstream needed a custom autograd chain here because the PyTorch of its time could neither
differentiate the convolution backward twice (needed by R1 and path-length regularisation)
nor skip the weight gradient while computing a gradient with respect to the images. Modern
PyTorch does both, but its derivative of the convolution backward is slow on the CPU: it
computes the weight gradient of the second pass as a convolution of the input with the output
gradient, batch and channels swapped (a "kernel" the size of the feature map over two or
twenty channels), which oneDNN runs at a fraction of its speed. That one convolution took
about a fifth of the discriminator's R1 step (bench/bench_networks.py).

Hence `conv2d` and `conv_transpose2d` (without bias and dilation, as every caller here), when
called inside `differentiable_backward()`, are an autograd Function whose backward is written
in differentiable convolutions:
- input gradient: the adjoint convolution, conv_transpose2d for conv2d (its output padding
  restores the input size) and conv2d for conv_transpose2d;
- weight gradient: `convolution_backward` asked for the weight only.
Differentiating that backward (R1's second pass) is then ordinary convolutions and the
weight gradients of convolutions, the kernels a training step runs anyway. A backward that
nothing will differentiate (no create_graph: the G and D steps) calls torch's
`convolution_backward` for both gradients at once instead, which is what torch's own
derivative runs there and about 4% faster on the CPU than the adjoint convolution. The weight gradient
is computed only when the autograd engine will use it (`torch._C._will_engine_execute_node`),
so `torch.autograd.grad(logits.sum(), [images])` computes none, as before. `no_weight_gradients()`
is therefore a documented no-op marker kept so that the loss can state its intent;
tests/ops/test_conv2d_resample.py checks that such a gradient skips the weight gradient without
it. Outside `differentiable_backward()`, and for other calls (a bias, dilation), the wrappers
are the torch functions, whose derivatives are the reference twin: tests hold the two equal in
values, first and second derivatives. The loss opens the context for the passes it
differentiates twice (R1's D forward, path length's G forward): elsewhere the Function's Python
overhead per call only cost time (the G and D steps of fpa-cpu: 1-5%).
"""

import contextlib

import torch

#----------------------------------------------------------------------------

_differentiable_backward = False     # Inside differentiable_backward()? (A plain global, which torch.compile can read.)

@contextlib.contextmanager
def differentiable_backward():
    """The convolutions made inside will have their backward differentiated (R1, path length):
    they run through the Function of the module docstring. Nests; a process-wide switch, like
    upstream's `conv2d_gradfix.enabled` (the training loop runs its passes in one thread)."""
    global _differentiable_backward # pylint: disable=global-statement
    previous, _differentiable_backward = _differentiable_backward, True
    try:
        yield
    finally:
        _differentiable_backward = previous

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if _differentiable_backward and bias is None and _is_one(dilation) and not isinstance(padding, str):
        return _Conv2d.apply(input, weight, (_pair(stride), _pair(padding), (0, 0), groups, False))
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride,
                                      padding=padding, dilation=dilation, groups=groups)

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if _differentiable_backward and bias is None and _is_one(dilation):
        return _Conv2d.apply(input, weight, (_pair(stride), _pair(padding), _pair(output_padding), groups, True))
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding,
                                                output_padding=output_padding, groups=groups, dilation=dilation)

def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)

def _is_one(dilation) -> bool:
    return _pair(dilation) == (1, 1)

def _engine_wants(node) -> bool:
    """Whether the running backward pass will use the gradient sent to `node`. For a leaf under
    torch.autograd.grad() the engine cannot tell (it raises): then yes."""
    try:
        return torch._C._will_engine_execute_node(node) # pylint: disable=protected-access
    except RuntimeError:
        return True

def _autocast_operands(*tensors):
    """The operands as torch's convolution sees them under autocast: float32 ones in the autocast
    dtype (float64 stays). The backward, which runs outside autocast, then gets these."""
    device_type = tensors[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return tensors
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t for t in tensors)

#----------------------------------------------------------------------------

class _Conv2d(torch.autograd.Function):
    """conv2d (transpose=False) or conv_transpose2d of x [N, C, H, W] with w, no bias, no
    dilation; cfg = (stride, padding, output_padding, groups, transpose) with pairs (y, x)."""

    @staticmethod
    def forward(ctx, x, w, cfg): # pylint: disable=arguments-differ
        stride, padding, output_padding, groups, transpose = cfg
        x, w = _autocast_operands(x, w)
        ctx.save_for_backward(x, w)
        ctx.cfg = cfg
        if transpose:
            return torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups)
        return torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, groups=groups)

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        x, w = ctx.saved_tensors
        stride, padding, output_padding, groups, transpose = ctx.cfg
        wants_dw = ctx.needs_input_grad[1] and _engine_wants(ctx.next_functions[1][0])
        if not torch.is_grad_enabled():
            # A first-order backward (no create_graph: nothing differentiates it): torch's own
            # kernel, both gradients in one call, 4% faster than the adjoint convolution below.
            dx, dw, _ = torch.ops.aten.convolution_backward(dy, x, w, None, stride, padding, (1, 1), transpose, output_padding, groups,
                                                            [ctx.needs_input_grad[0], wants_dw, False])
            return dx, dw, None
        dx = dw = None
        if ctx.needs_input_grad[0]:
            if transpose:
                dx = torch.nn.functional.conv2d(dy, w, stride=stride, padding=padding, groups=groups)
            else:
                # The rows and columns a strided convolution never read come back as output padding.
                adjoint_padding = [x.shape[i + 2] - ((dy.shape[i + 2] - 1) * stride[i] - 2 * padding[i] + w.shape[i + 2]) for i in range(2)]
                dx = torch.nn.functional.conv_transpose2d(dy, w, stride=stride, padding=padding, output_padding=adjoint_padding, groups=groups)
        if wants_dw:
            dw = torch.ops.aten.convolution_backward(dy, x, w, None, stride, padding, (1, 1), transpose, output_padding, groups,
                                                     [False, True, False])[1]
        return dx, dw, None

#----------------------------------------------------------------------------

@contextlib.contextmanager
def no_weight_gradients(disable: bool = True):
    """Marks a region whose gradients are taken with respect to activations only (R1, path
    length). A no-op: weight gradients that the autograd engine will not use are skipped
    anyway (see the module docstring). `disable` is accepted for upstream compatibility."""
    _ = disable # unused
    yield

#----------------------------------------------------------------------------
