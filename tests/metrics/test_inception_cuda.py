"""Our Inception-v3 on CUDA against the same network on the CPU. Needs no weights file: He-
initialised random weights with random batch-norm statistics keep the activations at a
useful scale through all 94 layers."""

import pytest
import torch

from metrics import inception
from tests.conftest import assert_close

def _random_net() -> inception.InceptionV3:
    net = inception.InceptionV3(with_output=False)
    gen = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, inception.ConvBN):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
            module.beta.copy_(torch.randn(module.beta.shape, generator=gen) * 0.1)
            module.mean.copy_(torch.randn(module.mean.shape, generator=gen) * 0.1)
            module.var.copy_(torch.rand(module.var.shape, generator=gen) + 0.5)
    return net

@pytest.mark.gpu
def test_cuda_features_match_cpu(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)     # IEEE float32 on both sides.
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    net = _random_net()
    images = torch.randint(0, 256, [4, 3, 64, 48], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = net(images, return_features=True)
        assert expected.std() > 0.1 * expected.abs().mean() and expected.abs().mean() > 1e-3 # Not degenerate.
        scale = float(expected.abs().max())
        for variant, cuda_net in (('reference', net.cuda()), ('fused', net.fused())):
            actual = cuda_net(images.cuda(), return_features=True).cpu()
            assert_close(actual, expected, rtol=1e-4, atol=1e-4 * scale, name=f'{variant} features on CUDA')
