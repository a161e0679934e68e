"""The op tests use tiny tensors, for which intra-op threads only add overhead; on a loaded
shared machine, MKL's thread team can even turn a microsecond matmul into tens of
milliseconds. Run each op test single-threaded and restore the setting afterwards."""

import pytest
import torch

@pytest.fixture(autouse=True)
def _single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)
