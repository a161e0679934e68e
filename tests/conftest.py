"""Shared test helpers: float64 closeness with a useful message, CUDA marker handling, and
one torch thread per test process (the suite runs as two pytest-xdist workers on 2 cores;
more threads per worker only oversubscribe them)."""

import pytest
import torch

def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason='needs CUDA (run on the GPU machine)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip_gpu)

@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)

def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, name: str = 'tensor') -> None:
    """Like torch.testing.assert_close, but the message names the tensor and the worst element."""
    assert actual.shape == expected.shape, f'{name}: shape {list(actual.shape)} != {list(expected.shape)}'
    diff = (actual.double() - expected.double()).abs()
    tol = atol + rtol * expected.double().abs()
    bad = diff > tol
    if bad.any():
        flat = int((diff - tol).flatten().argmax())
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape))
        raise AssertionError(f'{name}: {int(bad.sum())} of {diff.numel()} elements differ; worst at {idx}: '
                             f'{float(actual[idx])} vs {float(expected[idx])} (max abs diff {float(diff.max()):.3e}, atol {atol}, rtol {rtol})')
