"""bench/bench_authors_training.py without the authors' code: where it looks for the checkout,
the skip when there is none, one-line errors for bad options, and the run-time shim of their
CUDA calls (it must leave torch as it found it, or our rows would run patched)."""

import os
import re
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench'))
import bench_authors_training as bench   # noqa: E402

@pytest.fixture
def no_default_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'DEFAULT_FPAINTER', str(tmp_path / 'absent'))
    monkeypatch.delenv(bench.FPAINTER_ENV, raising=False)

def test_skips_without_a_checkout(no_default_checkout, capsys):
    bench.main([])      # Returns: exit status 0.
    out = capsys.readouterr().out
    assert 'skipped' in out and 'no IDSIA/fpainter checkout' in out and '--fpainter=DIR' in out

@pytest.mark.parametrize('how', ['option', 'environment'])
def test_an_explicit_path_without_a_checkout_is_an_error(no_default_checkout, tmp_path, monkeypatch, how):
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    argv = [f'--fpainter={empty}'] if how == 'option' else []
    if how == 'environment':
        monkeypatch.setenv(bench.FPAINTER_ENV, empty)
    with pytest.raises(SystemExit) as err:
        bench.main(argv)
    name = '--fpainter' if how == 'option' else bench.FPAINTER_ENV
    assert str(err.value) == f'{name}={empty}: no IDSIA/fpainter checkout there (expected {os.path.join(empty, "code", "painter.py")})'

@pytest.mark.parametrize('argv, message', [
    (['--batch=0'], '--batch=0: expected a positive multiple of 4'),
    (['--batch=6'], '--batch=6: expected a positive multiple of 4'),
    (['--rounds=0'], '--rounds=0: expected at least 1'),
    (['--threads=0'], '--threads=0: expected at least 1'),
])
def test_bad_options(no_default_checkout, capsys, argv, message):
    with pytest.raises(SystemExit) as err:
        bench.main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message on a machine without CUDA')
def test_cuda_without_a_gpu(no_default_checkout):
    with pytest.raises(SystemExit) as err:
        bench.main(['--device=cuda'])
    assert str(err.value).startswith('--device=cuda: no CUDA device is available')

# A stand-in for their painter.py: what it does at import is what the shim has to handle.
FAKE_PAINTER = '''
import torch
import torchvision
from torchvision import transforms
from kornia.filters import filter2d
assert torch.cuda.is_available(), 'You need to have an Nvidia GPU with CUDA installed.'
def accumulator(rank=0):
    return torch.zeros([], device=torch.device(f'cuda:{rank}'))
def moved(rank=0):
    return torch.ones(2).cuda(rank), torch.nn.Linear(2, 2).cuda(rank)
'''

@pytest.fixture
def fake_checkout(tmp_path, monkeypatch):
    code = tmp_path / 'fpainter' / 'code'
    code.mkdir(parents=True)
    (code / 'painter.py').write_text(FAKE_PAINTER)
    monkeypatch.setattr(bench, 'NEEDED_IMPORTS', ())
    assert 'painter' not in sys.modules
    yield str(tmp_path / 'fpainter')
    sys.modules.pop('painter', None)

def test_their_cuda_calls_run_on_the_cpu_and_torch_is_restored(fake_checkout):
    before = (torch.cuda.is_available, torch.nn.Module.__dict__.get('cuda'), torch.Tensor.__dict__.get('cuda'))
    cpu = torch.device('cpu')
    painter = bench.import_authors(bench.check_checkout(fake_checkout, True, '--fpainter'), cpu)
    assert (torch.cuda.is_available, torch.nn.Module.__dict__.get('cuda'), torch.Tensor.__dict__.get('cuda')) == before
    for name in bench.UNUSED_IMPORTS:
        assert name not in sys.modules or sys.modules[name].__spec__ is not None, f'a placeholder for {name} was left behind'
    assert painter.accumulator().device == cpu            # torch.device('cuda:0') as their module sees it.
    assert painter.torch.device('cpu') == cpu
    with bench.cuda_calls_on(cpu):
        tensor, module = painter.moved()
    assert tensor.device == cpu and module.weight.device == cpu
    assert (torch.cuda.is_available, torch.nn.Module.__dict__.get('cuda'), torch.Tensor.__dict__.get('cuda')) == before

def test_the_shim_is_undone_after_an_error():
    before = (torch.cuda.is_available, torch.nn.Module.__dict__.get('cuda'), torch.Tensor.__dict__.get('cuda'))
    with pytest.raises(ValueError):
        with bench.cuda_calls_on(torch.device('cpu')):
            assert torch.cuda.is_available()
            raise ValueError
    assert (torch.cuda.is_available, torch.nn.Module.__dict__.get('cuda'), torch.Tensor.__dict__.get('cuda')) == before

def test_skips_without_a_dependency_of_theirs(fake_checkout, monkeypatch, capsys):
    monkeypatch.setattr(bench, 'NEEDED_IMPORTS', ('no_such_module_here',))
    bench.main([f'--fpainter={fake_checkout}'])
    assert 'skipped, the authors\' code needs no_such_module_here (pip install no_such_module_here)' in capsys.readouterr().out
    assert 'painter' not in sys.modules

def test_gpu_check_runs_benchmarks_that_exist():
    """bench/gpu_check.sh's default list names bench/bench_NAME.py files, this one among them."""
    with open(os.path.join(REPO, 'bench', 'gpu_check.sh')) as f:
        [names] = re.findall(r'BENCH_ONLY:-([a-z_,]+)\}', f.read())
    names = names.split(',')
    assert 'authors_training' in names
    for name in names:
        assert os.path.isfile(os.path.join(REPO, 'bench', f'bench_{name}.py')), name
