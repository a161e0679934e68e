"""Fast Weight Painters (networks/fpa.py): painters, their reference twins, the generator."""

import math

import pytest
import torch

from networks import fpa
from tests.conftest import assert_close

#----------------------------------------------------------------------------
# Painter inputs: softmax keys, raw values, sigmoid learning rates (as the generator makes them).

def _painter_inputs(B, C, T, N, r, seed=0, dtype=torch.float64, key_softmax=True):
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn([B, C, T, N], generator=gen, dtype=dtype)
    keys = keys.softmax(dim=-1) if key_softmax else keys / math.sqrt(N)
    values = torch.randn([B, C, T, N], generator=gen, dtype=dtype)
    lrs = torch.randn([B, C, T, r], generator=gen, dtype=dtype).sigmoid()
    return keys.requires_grad_(), values.requires_grad_(), lrs.requires_grad_()

def _grads(painting, inputs, seed=1):
    """Gradients of a random linear function of W and U with respect to `inputs`."""
    gen = torch.Generator().manual_seed(seed)
    gW = torch.randn(painting.W.shape, generator=gen, dtype=painting.W.dtype)
    gU = torch.randn(painting.U.shape, generator=gen, dtype=painting.U.dtype)
    loss = (painting.W * gW).sum() + (painting.U * gU).sum()
    return torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True, materialize_grads=True)

SIZES = [(1, 1, 1, 4), (2, 3, 5, 8), (3, 1, 16, 16), (2, 3, 64, 32), (1, 2, 33, 7)]   # (B, C, T, N)

@pytest.mark.parametrize('B,C,T,N', SIZES)
@pytest.mark.parametrize('vector_lr', [False, True])
@pytest.mark.parametrize('key_softmax', [True, False])
def test_delta_parallel_equals_sequential(B, C, T, N, vector_lr, key_softmax):
    keys, values, lrs = _painter_inputs(B, C, T, N, r=N if vector_lr else 1, seed=B * 1000 + T * 10 + N, key_softmax=key_softmax)
    par = fpa.delta_rule_parallel(keys, values, lrs)
    seq = fpa.delta_rule_sequential(keys, values, lrs)
    assert par.W.shape == (B, C, N, N) and par.U.shape == (B, C, T, N)
    assert_close(par.W, seq.W, rtol=1e-10, atol=1e-10, name='W')
    assert_close(par.U, seq.U, rtol=1e-10, atol=1e-10, name='U')
    for name, g_par, g_seq in zip(['keys', 'values', 'lrs'], _grads(par, (keys, values, lrs)), _grads(seq, (keys, values, lrs))):
        assert_close(g_par, g_seq, rtol=1e-10, atol=1e-10, name=f'd/d{name}')
    assert float(_grads(par, (lrs,))[0][:, :, 0].abs().max()) == 0, 'the first learning rate must not be used'

@pytest.mark.parametrize('vector_lr', [False, True])
def test_delta_parallel_gradcheck(vector_lr):
    keys, values, lrs = _painter_inputs(2, 2, 4, 3, r=3 if vector_lr else 1)
    assert torch.autograd.gradcheck(lambda k, v, b: fpa.delta_rule_parallel(k, v, b)[:2], (keys, values, lrs))
    assert torch.autograd.gradgradcheck(lambda k, v, b: fpa.delta_rule_parallel(k, v, b).W, (keys, values, lrs))

def test_delta_first_step_convention_by_hand():
    # Two steps, N = 2, one channel. t = 0: W_0 = v_0 k_0^T whatever beta_0 is.
    # t = 1: u_1 = beta_1 (v_1 - W_0 k_1) = 0.5 ([3, 4] - [0.5, 1.0]) = [1.25, 1.5].
    keys = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64).reshape(1, 1, 2, 2)
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).reshape(1, 1, 2, 2)
    scalar_lr = torch.tensor([0.9, 0.5], dtype=torch.float64).reshape(1, 1, 2, 1)
    vector_lr = torch.tensor([[0.9, 0.1], [0.5, 0.25]], dtype=torch.float64).reshape(1, 1, 2, 2)
    expected_scalar = torch.tensor([[1.625, 0.625], [2.75, 0.75]], dtype=torch.float64)
    expected_vector = torch.tensor([[1.625, 0.625], [2.375, 0.375]], dtype=torch.float64)   # u_1 = [0.5 * 2.5, 0.25 * 3]
    for painter in [fpa.delta_rule_sequential, fpa.delta_rule_parallel]:
        assert_close(painter(keys, values, scalar_lr).W[0, 0], expected_scalar, rtol=0, atol=1e-14, name=painter.__name__)
        assert_close(painter(keys, values, vector_lr).W[0, 0], expected_vector, rtol=0, atol=1e-14, name=painter.__name__)

def test_delta_image_orientation():
    # One step: W = v k^T, value index = row (height), key index = column (width).
    keys = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    values = torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 3)
    W = fpa.delta_rule_parallel(keys, values, torch.ones(1, 1, 1, 1, dtype=torch.float64)).W[0, 0]
    assert W[0, 1] == 5 and W.abs().sum() == 5

@pytest.mark.parametrize('B,C,T,N', SIZES)
def test_hebbian_matmul_equals_loop(B, C, T, N):
    keys, values, _ = _painter_inputs(B, C, T, N, r=1, seed=T)
    fast, slow = fpa.hebbian_rule(keys, values), fpa.hebbian_rule_sequential(keys, values)
    assert_close(fast.W, slow.W, rtol=1e-12, atol=1e-12, name='W')
    for g_fast, g_slow in zip(_grads(fast, (keys, values)), _grads(slow, (keys, values))):
        assert_close(g_fast, g_slow, rtol=1e-12, atol=1e-12, name='grad')
    assert torch.autograd.gradcheck(lambda k, v: fpa.hebbian_rule(k, v).W, (keys[:1, :1, :3, :3].detach().requires_grad_(), values[:1, :1, :3, :3].detach().requires_grad_()))

def test_oja_by_hand():
    # Two steps, N = 2, by hand with Python floats: the key is softmax'd once more at every step
    # (twice in total at t = 0), the learning rate scales the value at every step.
    def softmax(x):
        e = [math.exp(a) for a in x]
        return [a / sum(e) for a in e]
    k0, k1 = [0.3, 0.7], [0.6, 0.4]
    v0, v1 = [1.0, 2.0], [-1.0, 0.5]
    b0, b1 = 0.5, 0.25
    kk0 = softmax(k0)
    W0 = [[b0 * v0[i] * kk0[j] for j in range(2)] for i in range(2)]
    kk1 = softmax([k1[j] - sum(W0[i][j] * v1[i] for i in range(2)) for j in range(2)])
    W1 = [[W0[i][j] + b1 * v1[i] * kk1[j] for j in range(2)] for i in range(2)]
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    out = fpa.oja_rule_sequential(t([k0, k1]).reshape(1, 1, 2, 2), t([v0, v1]).reshape(1, 1, 2, 2), t([b0, b1]).reshape(1, 1, 2, 1))
    assert_close(out.W[0, 0], t(W1), rtol=0, atol=1e-14, name='W')
    assert_close(out.K[0, 0], t([kk0, kk1]), rtol=0, atol=1e-14, name='written keys')
    assert_close(fpa.outer_sum(out.U, out.K), out.W, rtol=0, atol=1e-14, name='sum of updates')

@pytest.mark.parametrize('key_softmax', [True, False])
@pytest.mark.parametrize('vector_lr', [False, True])
def test_oja_gradcheck(key_softmax, vector_lr):
    keys, values, lrs = _painter_inputs(1, 2, 4, 3, r=3 if vector_lr else 1)
    assert torch.autograd.gradcheck(lambda k, v, b: fpa.oja_rule_sequential(k, v, b, key_softmax=key_softmax)[:3:2], (keys, values, lrs))

@pytest.mark.parametrize('painter', ['delta_parallel', 'delta_sequential', 'hebbian', 'oja'])
def test_updates_and_prefix_sums(painter):
    keys, values, lrs = _painter_inputs(2, 3, 6, 5, r=1)
    painting = dict(
        delta_parallel=lambda: fpa.delta_rule_parallel(keys, values, lrs),
        delta_sequential=lambda: fpa.delta_rule_sequential(keys, values, lrs),
        hebbian=lambda: fpa.hebbian_rule(keys, values),
        oja=lambda: fpa.oja_rule_sequential(keys, values, lrs),
    )[painter]()
    updates = fpa.rank1_updates(painting)
    assert updates.shape == (2, 6, 3, 5, 5)
    assert_close(updates.sum(dim=1), painting.W, rtol=1e-12, atol=1e-12, name='sum of updates')
    assert torch.linalg.matrix_rank(updates[1, 2, 0]) == 1, 'each update must be rank 1'

def test_display_frames():
    gen = torch.Generator().manual_seed(0)
    frames = torch.randn([2, 4, 3, 5, 5], generator=gen)
    frames[1, 2] = 0
    final = 7 * torch.randn([2, 3, 5, 5], generator=gen)
    raw = fpa.display_frames(frames, final, out_tanh=False)
    norms = raw.flatten(2).norm(dim=2)
    expected = final.flatten(1).norm(dim=1)[:, None].expand(2, 4).clone()
    expected[1, 2] = 0
    assert_close(norms, expected, rtol=1e-5, atol=1e-5, name='frame norms')
    assert_close(raw[0, 1] / frames[0, 1], torch.full_like(frames[0, 1], float(raw[0, 1, 0, 0, 0] / frames[0, 1, 0, 0, 0])), rtol=1e-5, atol=0, name='one scale per frame over all channels')
    assert torch.equal(fpa.display_frames(frames, final), raw.tanh())
    with pytest.raises(ValueError, match='frames'):
        fpa.display_frames(frames[0], final)
    with pytest.raises(ValueError, match='final'):
        fpa.display_frames(frames, final[:, :1])

#----------------------------------------------------------------------------
