"""The CUDA plugin machinery, testable without a GPU: custom_ops' build policy (content-
hashed build directory, atomic copy, locks, failure remembered and reported once), the
ops' fallback when a build fails, and the autograd compositions around the CUDA kernels,
driven by a stand-in kernel written in torch."""

import os
import types
import warnings

import pytest
import torch

from tests.ops.naive import check_same_derivatives
from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d

@pytest.fixture
def fresh_custom_ops(monkeypatch, tmp_path):
    """Empty plugin caches, a private extensions dir, and a toolchain that looks present."""
    monkeypatch.setattr(custom_ops, '_loaded', {})
    monkeypatch.setattr(custom_ops, '_failed', {})
    monkeypatch.setattr(custom_ops, 'verbosity', 'none')
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'ext'))
    from torch.utils import cpp_extension
    monkeypatch.setattr(cpp_extension, 'CUDA_HOME', '/fake/cuda')
    monkeypatch.setattr(cpp_extension, 'verify_ninja_availability', lambda: None)
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'op.cpp').write_text('// cpp\n')
    (src / 'op.cu').write_text('// cu\n')
    (src / 'op.h').write_text('// h\n')
    return types.SimpleNamespace(cpp_extension=cpp_extension, src=src, root=tmp_path / 'ext')

def _get(src, name='op_plugin'):
    return custom_ops.get_plugin(name, sources=['op.cpp', 'op.cu'], headers=['op.h'], source_dir=str(src))

#----------------------------------------------------------------------------
# custom_ops

def test_failed_build_is_reported_once_and_remembered(fresh_custom_ops, monkeypatch):
    calls = []
    def failing_load(**kwargs):
        calls.append(kwargs)
        raise RuntimeError('Error building extension \'op_plugin\'\nnvcc fatal : Unsupported gpu architecture')
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', failing_load)
    with pytest.warns(UserWarning, match='could not build the CUDA plugin "op_plugin": RuntimeError: Error building'):
        with pytest.raises(custom_ops.PluginUnavailable):
            _get(fresh_custom_ops.src)
    with warnings.catch_warnings():
        warnings.simplefilter('error') # A second report would fail here.
        with pytest.raises(custom_ops.PluginUnavailable, match='Error building extension'):
            _get(fresh_custom_ops.src)
    assert len(calls) == 1 # Not retried.

def test_missing_toolkit_is_a_clear_failure(fresh_custom_ops, monkeypatch):
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'CUDA_HOME', None)
    with pytest.warns(UserWarning, match='no CUDA toolkit found'):
        with pytest.raises(custom_ops.PluginUnavailable):
            _get(fresh_custom_ops.src)

def test_build_dir_is_keyed_by_source_content(fresh_custom_ops, monkeypatch):
    seen = []
    def fake_load(name, build_directory, sources, **kwargs):
        seen.append((build_directory, sources, kwargs))
        assert not os.path.exists(os.path.join(build_directory, 'lock'))
        assert os.path.exists(os.path.join(build_directory, '.build.lock')) # Held during the build.
        return types.SimpleNamespace(name=name)
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', fake_load)
    module = _get(fresh_custom_ops.src)
    assert _get(fresh_custom_ops.src) is module # Cached in-process.
    build_dir, sources, kwargs = seen[0]
    assert os.path.dirname(build_dir) == str(fresh_custom_ops.root)
    assert sorted(os.listdir(build_dir)) == ['op.cpp', 'op.cu', 'op.h'] # Copied; our lock released.
    assert sources == [os.path.join(build_dir, 'op.cpp'), os.path.join(build_dir, 'op.cu')]
    assert '--use_fast_math' not in kwargs.get('extra_cuda_cflags', []) # Its approximate tanh missed the reference by 5e-5.
    assert not [p for p in os.listdir(fresh_custom_ops.root) if p.startswith('.tmp')] # Temporary dir gone.

    # Editing a header gives a new build directory; the old one is left alone.
    (fresh_custom_ops.src / 'op.h').write_text('// h, edited\n')
    monkeypatch.setattr(custom_ops, '_loaded', {})
    _get(fresh_custom_ops.src)
    assert seen[1][0] != build_dir and os.path.isdir(build_dir)

def test_stale_locks_are_cleared(fresh_custom_ops, monkeypatch):
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', lambda **kwargs: 'module')
    files = [str(fresh_custom_ops.src / n) for n in ('op.cpp', 'op.cu', 'op.h')]
    build_dir = custom_ops._prepare_build_dir('op_plugin', files)
    dead_pid = 2 ** 22 + 12345 # Above the default pid_max: no such process.
    with open(os.path.join(build_dir, '.build.lock'), 'w', encoding='utf-8') as f:
        f.write(f'{custom_ops.socket.gethostname()} {dead_pid}')
    open(os.path.join(build_dir, 'lock'), 'w', encoding='utf-8').close() # Torch's baton, left by a Ctrl-C.
    assert _get(fresh_custom_ops.src) == 'module'
    assert not os.path.exists(os.path.join(build_dir, 'lock'))
    assert not os.path.exists(os.path.join(build_dir, '.build.lock'))

def test_live_lock_times_out_with_advice(fresh_custom_ops, monkeypatch):
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', lambda **kwargs: 'module')
    monkeypatch.setattr(custom_ops, 'lock_timeout_s', 0.2)
    files = [str(fresh_custom_ops.src / n) for n in ('op.cpp', 'op.cu', 'op.h')]
    build_dir = custom_ops._prepare_build_dir('op_plugin', files)
    with open(os.path.join(build_dir, '.build.lock'), 'w', encoding='utf-8') as f:
        f.write(f'{custom_ops.socket.gethostname()} {os.getpid()}') # Alive: this very process.
    with pytest.warns(UserWarning, match='lock is stale: delete that file'):
        with pytest.raises(custom_ops.PluginUnavailable, match='TimeoutError: waited 0 s for the build lock'):
            _get(fresh_custom_ops.src)

def test_ops_fall_back_when_the_build_fails(fresh_custom_ops, monkeypatch):
    """A CUDA tensor with a failed build picks bias_act's torch implementation (reported once);
    an explicit impl='cuda' raises the reason."""
    def failing_load(**kwargs):
        raise RuntimeError('nvcc not found')
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', failing_load)
    fake_cuda_tensor = types.SimpleNamespace(is_cuda=True)
    with pytest.warns(UserWarning) as record:
        assert bias_act._choose_impl(fake_cuda_tensor) == 'ref'
        assert bias_act._choose_impl(fake_cuda_tensor) == 'ref'
    assert [str(r.message).split('"')[1] for r in record] == ['bias_act_plugin']
    with pytest.raises(custom_ops.PluginUnavailable, match='nvcc not found'):
        bias_act._plugin()
    with pytest.warns(UserWarning, match='could not build the CUDA plugin "upfirdn2d_plugin"'):
        with pytest.raises(custom_ops.PluginUnavailable, match='nvcc not found'):
            upfirdn2d._plugin()
    with pytest.raises(ValueError, match="impl='cuda' needs a CUDA tensor"):
        bias_act.bias_act(torch.zeros([2, 3]), impl='cuda')

def test_cpu_tensors_never_build(fresh_custom_ops, monkeypatch):
    def exploding_load(**kwargs):
        raise AssertionError('a CPU tensor must not trigger a plugin build')
    monkeypatch.setattr(fresh_custom_ops.cpp_extension, 'load', exploding_load)
    x = torch.randn([1, 2, 4, 4])
    bias_act.bias_act(x, torch.zeros([2]), act='lrelu')
    upfirdn2d.upsample2d(x, upfirdn2d.setup_filter([1, 3, 3, 1]))
    assert not custom_ops._failed and not custom_ops._loaded

#----------------------------------------------------------------------------
# The autograd compositions around the kernels, with a stand-in kernel in torch that has
# the kernels' exact contract (bias_act.h, upfirdn2d.h), on CPU.

class _TorchBiasActKernel:
    def bias_act(self, x, b, dy, grad, dim, act_idx, alpha, gain, clamp):
        act = next(name for name, spec in bias_act.activation_funcs.items() if spec.cuda_idx == act_idx)
        z = (x if b.numel() == 0 else x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])).detach()
        fn = lambda z: bias_act._bias_act_ref(z, None, dim, act, alpha, gain, clamp)
        if grad == 0:
            return fn(z)
        z.requires_grad_(True)
        with torch.enable_grad():
            (d1,) = torch.autograd.grad(fn(z).sum(), [z], create_graph=True)
            if grad == 1:
                return (dy * d1).detach()
            if not d1.requires_grad: # Piecewise-linear: F'' = 0.
                return torch.zeros_like(z).detach()
            (d2,) = torch.autograd.grad(d1.sum(), [z], allow_unused=True)
        return torch.zeros_like(z).detach() if d2 is None else (dy * d2).detach()

class _TorchUpfirdn2dKernel:
    def upfirdn2d(self, x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
        assert f.ndim == 2 and f.dtype == torch.float32
        return upfirdn2d._upfirdn2d_ref(x.detach(), f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)

@pytest.mark.parametrize('act', list(bias_act.activation_funcs))
@pytest.mark.parametrize('clamp', [-1.0, 0.9])
def test_bias_act_cuda_composition(monkeypatch, act, clamp):
    monkeypatch.setattr(bias_act, '_plugin', _TorchBiasActKernel)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn([3, 4, 2], generator=gen, dtype=torch.float64) * 1.5).requires_grad_(True)
    b = torch.randn([4], generator=gen, dtype=torch.float64).requires_grad_(True)
    spec = bias_act.activation_funcs[act]
    cfg = (1, spec.cuda_idx, float(spec.def_alpha), float(spec.def_gain), clamp)
    check_same_derivatives(lambda x, b: bias_act._BiasActCuda.apply(x, b, cfg),
                           lambda x, b: bias_act._bias_act_ref(x, b, 1, act, *cfg[2:]),
                           [x, b], rtol=1e-10, atol=1e-10, name=f'{act} clamp={clamp}')
    # Third order is refused, loudly.
    y = bias_act._BiasActCuda.apply(x, b, cfg)
    (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match='first and second derivatives only'):
        torch.autograd.grad(gx.square().sum(), [x], create_graph=True)

@pytest.mark.parametrize('filter_name', ['1331 2-D', '121 separable', 'random 3x2'])
def test_upfirdn2d_cuda_composition(monkeypatch, filter_name):
    from tests.ops.test_upfirdn2d import FAST_CASES, FILTERS # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(upfirdn2d, '_plugin', _TorchUpfirdn2dKernel)
    f = FILTERS[filter_name]
    x = torch.randn([2, 2, 10, 9], dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    for case in FAST_CASES:
        upx, upy = upfirdn2d._parse_scaling(case.get('up', 1), 'up')
        downx, downy = upfirdn2d._parse_scaling(case.get('down', 1), 'down')
        cfg = (upx, upy, downx, downy, *upfirdn2d._parse_padding(case['padding']), False, -1.7)
        check_same_derivatives(lambda x: upfirdn2d._Upfirdn2dCuda.apply(x, f, cfg),
                               lambda x: upfirdn2d.upfirdn2d(x, f, impl='ref', gain=-1.7, **case),
                               [x], rtol=1e-10, atol=1e-10, name=f'{filter_name} {case}')

#----------------------------------------------------------------------------
