import pytest
import torch

import networks
from torch_utils import misc, persistence

def test_assert_shape_messages():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [None, 3, 4])
    with pytest.raises(AssertionError, match=r'img: expected shape \[\*, 5, 4\], got \[2, 3, 4\]'):
        misc.assert_shape(x, [None, 5, 4], name='img')
    with pytest.raises(AssertionError, match='expected 2 dimensions'):
        misc.assert_shape(x, [2, 3])

def test_copy_params_and_buffers_by_name():
    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    dst = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    src[1].running_mean.fill_(7)
    missing = misc.copy_params_and_buffers(src, dst)
    assert torch.equal(dst[0].weight, src[0].weight)
    assert torch.equal(dst[1].running_mean, src[1].running_mean)
    assert missing == ['2.weight', '2.bias']
    with pytest.raises(ValueError, match='source has no tensor named "2.weight"'):
        misc.copy_params_and_buffers(src, dst, require_all=True)
    wrong = torch.nn.Sequential(torch.nn.Linear(3, 5))
    before = wrong[0].bias.detach().clone()
    with pytest.raises(ValueError, match=r'2 tensors differ in shape \(source vs destination\): 0.weight \[4, 3\] vs \[5, 3\]; 0.bias \[4\] vs \[5\]$'):
        misc.copy_params_and_buffers(src, wrong)
    assert torch.equal(wrong[0].bias, before), 'nothing is copied when shapes differ'

def test_print_module_summary_returns_output_and_counts(capsys):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.randn(5, 3)
    out = misc.print_module_summary(net, [x])
    assert torch.equal(out, net(x))
    text = capsys.readouterr().out
    assert 'Total' in text and str(3 * 4 + 4 + 4 * 2 + 2) in text
    assert '[5, 2]' in text

@persistence.persistent_class
class _Toy(torch.nn.Module):
    def __init__(self, width, depth=2, **extra):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(depth))
        self.extra = extra

def test_persistent_class_records_init_kwargs():
    toy = _Toy(4, extra_option=[1, 2])
    assert toy.init_kwargs == {'width': 4, 'depth': 2, 'extra_option': [1, 2]}
    assert toy.class_name.endswith('_Toy')

def test_load_network_refuses_classes_outside_the_codebase(tmp_path):
    # A file naming a class outside persistence.NETWORK_CLASSES must not be looked up or constructed.
    path = str(tmp_path / 'evil.pkl')
    data = {'format': persistence.FORMAT_NAME, 'version': 1,
            'G': {'class_name': 'os.system', 'init_kwargs': {'command': 'echo hi'}, 'state_dict': {}}}
    torch.save(data, path)
    with pytest.raises(ValueError, match=r"G: class_name='os.system' is not allowed here \(expected networks.fpa.Generator or "):
        networks.load_network(path)

def test_load_network_rejects_arbitrary_pickles(tmp_path):
    import pickle
    path = tmp_path / 'not_a_network.pkl'
    path.write_bytes(pickle.dumps({'G': object()}))
    with pytest.raises(ValueError, match='not a readable network file|not a network file'):
        networks.load_network(str(path))
    path.write_bytes(b'garbage')
    with pytest.raises(ValueError, match=r'not_a_network.pkl: truncated pickle') as info:
        networks.load_network(str(path))
    assert '\n' not in str(info.value)
    with pytest.raises(ValueError, match='not a readable resume checkpoint') as info:    # What resume checkpoints are read with.
        persistence.load_plain_data(str(path), str(path), 'resume checkpoint')
    assert 'weights_only' not in str(info.value), "never pass on torch's advice to load with weights_only=False"
    assert '\n' not in str(info.value)
