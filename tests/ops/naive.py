"""Independent, obviously-correct NumPy/SciPy versions of the ops, for the tests, and a
helper that holds two implementations equal in value, first and second derivatives."""

import numpy as np
import scipy.signal
import torch

from tests.conftest import assert_close

#----------------------------------------------------------------------------

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)

def _quad(p):
    if isinstance(p, int):
        return p, p, p, p
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    return tuple(p)

def naive_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """x: float64 array [N, C, H, W]; f: 1-D (applied along both axes) or 2-D array, or None.
    Zero insertion, np.pad / slicing, a per-tap sum of shifted images, then slicing."""
    x = np.asarray(x, dtype=np.float64)
    f = np.ones([1, 1]) if f is None else np.asarray(f, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _quad(padding)
    n, c, h, w = x.shape
    z = np.zeros([n, c, h * upy, w * upx])
    z[:, :, ::upy, ::upx] = x
    z = np.pad(z, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    k = f if flip_filter else f[::-1, ::-1] # Convolution = correlation with the flipped taps.
    fh, fw = k.shape
    out_h, out_w = z.shape[2] - fh + 1, z.shape[3] - fw + 1
    out = np.zeros([n, c, out_h, out_w])
    for i in range(fh):
        for j in range(fw):
            out += k[i, j] * z[:, :, i:i + out_h, j:j + out_w]
    return out[:, :, ::downy, ::downx] * gain

def scipy_upfirdn2d_separable(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """The same for a 1-D filter, with scipy.signal.upfirdn along each axis. upfirdn's full
    convolution c relates to the padded valid one by v[m] = c[m + k - 1 - pad0]."""
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(f, dtype=np.float64)
    h = h[::-1] if flip_filter else h
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _quad(padding)

    def along_last_axis(s, u, d, p0, p1):
        k, length = len(h), s.shape[-1]
        full = np.apply_along_axis(lambda v: scipy.signal.upfirdn(h, v, up=u), -1, s)
        idx = np.arange(0, length * u + p0 + p1 - k + 1, d) + k - 1 - p0
        ok = (idx >= 0) & (idx < full.shape[-1])
        out = np.zeros(s.shape[:-1] + (len(idx),))
        out[..., ok] = full[..., idx[ok]]
        return out

    y = along_last_axis(x, upx, downx, px0, px1)
    y = along_last_axis(y.swapaxes(2, 3), upy, downy, py0, py1).swapaxes(2, 3)
    return y * gain

def naive_conv2d(x, w, groups=1, flip_weight=True):
    """Valid 2-D correlation (convolution when not flip_weight) by explicit tap sums."""
    w = np.asarray(w, dtype=np.float64)
    if not flip_weight:
        w = w[:, :, ::-1, ::-1]
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    ocg = oc // groups
    out = np.zeros([n, oc, h - kh + 1, wd - kw + 1])
    for g in range(groups):
        xg = x[:, g * icg:(g + 1) * icg]
        for a in range(kh):
            for b in range(kw):
                patch = xg[:, :, a:a + out.shape[2], b:b + out.shape[3]] # [N, icg, oh, ow]
                out[:, g * ocg:(g + 1) * ocg] += np.einsum('oi,nihw->nohw', w[g * ocg:(g + 1) * ocg, :, a, b], patch)
    return out

#----------------------------------------------------------------------------

def check_same_derivatives(fn_a, fn_b, inputs, rtol, atol, name, second_order=True):
    """Hold fn_a(*inputs) equal to fn_b(*inputs) in value; in the gradient of <out, p> with
    respect to every input requiring grad (p random); and in the derivative of
    <gradient, q> (q random) with respect to those inputs and to p. The last one is what R1
    needs: the gradient's dependence on the upstream gradient p (backward of the backward),
    and on the inputs for nonlinear ops."""
    results = []
    for fn in (fn_a, fn_b):
        args = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
        out = fn(*args)
        diff = [t for t in args if t.requires_grad]
        res = {'value': out.detach()}
        if diff:
            proj = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            proj = proj.to(device=out.device, dtype=out.dtype).requires_grad_(second_order)
            grads = torch.autograd.grad((out * proj).sum(), diff, create_graph=second_order)
            res.update({f'grad[{i}]': g.detach() for i, g in enumerate(grads)})
            if second_order:
                projs = [torch.randn(g.shape, generator=torch.Generator().manual_seed(2 + i), dtype=torch.float64).to(g.device, g.dtype)
                         for i, g in enumerate(grads)]
                loss = sum((g * q).sum() for g, q in zip(grads, projs))
                targets = diff + [proj]
                grads2 = torch.autograd.grad(loss, targets, allow_unused=True)
                res.update({f'grad2[{i}]': torch.zeros_like(t) if g is None else g
                            for i, (g, t) in enumerate(zip(grads2, targets))})
        results.append(res)
    for label in results[0]:
        assert_close(results[0][label], results[1][label], rtol=rtol, atol=atol, name=f'{name} {label}')

#----------------------------------------------------------------------------
