"""The generator contract (networks/__init__.py), checked for every registered generator."""


import pytest
import torch

import dnnlib
import networks
from torch_utils import persistence

# A tiny configuration per generator family, so that every registered generator runs fast.
# Registering a generator whose class has no entry here fails test_every_generator_has_a_tiny_config.
TINY_KWARGS: dict[str, dict] = {
    'networks.fpa.Generator': dict(num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32,
                                   unet_kwargs=dict(dim=8, dim_mults=(1, 2), attn_heads=1, attn_head_dim=8)),
    'networks.stylegan2.Generator': dict(w_dim=32, channel_base=256, channel_max=32, mapping_kwargs=dict(num_layers=2)),
    'networks.stylegan3.Generator': dict(w_dim=32, channel_base=256, channel_max=16, num_layers=4, margin_size=4, mapping_kwargs=dict(num_layers=2)),
}

RESOLUTION = 16

def _build(name: str, c_dim: int, img_channels: int, seed: int = 0) -> torch.nn.Module:
    kwargs = networks.generator_kwargs(name)
    for key, value in TINY_KWARGS[kwargs.class_name].items():
        if isinstance(value, dict):     # Nested kwargs shrink only the entries that have them.
            if kwargs.get(key) is not None:
                kwargs[key] = {**kwargs[key], **value}
        else:
            kwargs[key] = value
    torch.manual_seed(seed)
    G = dnnlib.util.construct_class_by_name(**kwargs, z_dim=32, c_dim=c_dim, img_resolution=RESOLUTION, img_channels=img_channels)
    return G.eval()

def _inputs(G, batch: int = 3, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, G.z_dim], generator=gen)
    c = torch.nn.functional.one_hot(torch.arange(batch) % max(G.c_dim, 1), max(G.c_dim, 1)).float()[:, :G.c_dim]
    return z, c

def test_every_generator_has_a_tiny_config():
    for name, kwargs in networks.GENERATORS.items():
        assert kwargs.class_name in TINY_KWARGS, f'generator "{name}" ({kwargs.class_name}) has no tiny test config'

@pytest.mark.parametrize('name', sorted(networks.GENERATORS))
@pytest.mark.parametrize('img_channels', [1, 3])
def test_output_shape_dtype_range(name, img_channels):
    G = _build(name, c_dim=0, img_channels=img_channels)
    networks.check_generator(G)
    z, c = _inputs(G)
    img = G(z, c, noise_mode='const', force_fp32=True, update_emas=False)
    assert img.dtype == torch.float32
    assert img.shape == (3, img_channels, RESOLUTION, RESOLUTION)
    assert torch.isfinite(img).all()
    assert img.abs().max() < 10, 'images should be in about [-1, 1]'
    assert img.std() > 0, 'a constant image'

@pytest.mark.parametrize('name', sorted(networks.GENERATORS))
def test_determinism_and_mapping_split(name):
    G1 = _build(name, c_dim=0, img_channels=3, seed=5)
    G2 = _build(name, c_dim=0, img_channels=3, seed=5)
    z, c = _inputs(G1)
    img1 = G1(z, c, noise_mode='const')
    assert torch.equal(img1, G2(z, c, noise_mode='const')), 'same seed must give the same network and output'
    assert torch.equal(img1, G1(z, c, noise_mode='const')), 'two calls must agree'
    ws = G1.mapping(z, c)
    assert ws.shape == (3, G1.num_ws, G1.w_dim)
    assert torch.equal(G1.synthesis(ws, noise_mode='const'), img1), 'G(z, c) must equal G.synthesis(G.mapping(z, c))'
    assert not torch.equal(img1[0], img1[1]), 'different latents must give different images'

@pytest.mark.parametrize('name', sorted(networks.GENERATORS))
def test_truncation(name):
    G = _build(name, c_dim=0, img_channels=3)
    z, c = _inputs(G)
    ws = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws), atol=1e-6), 'psi=0 must give w_avg everywhere'
    ws_half = G.mapping(z, c, truncation_psi=0.5)
    assert torch.allclose(ws_half, G.mapping.w_avg.lerp(G.mapping(z, c), 0.5), atol=1e-5)

@pytest.mark.parametrize('name', sorted(networks.GENERATORS))
def test_conditioning(name):
    G = _build(name, c_dim=4, img_channels=3)
    z, c = _inputs(G)
    img_a = G(z, c, noise_mode='const')
    img_b = G(z, c.roll(1, dims=1), noise_mode='const')
    assert img_a.shape == (3, 3, RESOLUTION, RESOLUTION)
    assert not torch.allclose(img_a, img_b), 'the label must change the image'

@pytest.mark.parametrize('name', sorted(networks.GENERATORS))
def test_save_load_round_trip(name, tmp_path):
    G = _build(name, c_dim=2, img_channels=3)
    z, c = _inputs(G)
    path = str(tmp_path / 'network.pkl')
    persistence.save_network(path, G_ema=G, training_set_kwargs=dict(path='x.zip', resolution=RESOLUTION))
    loaded = networks.load_network(path)
    assert type(loaded.G_ema) is type(G)
    assert loaded.training_set_kwargs.resolution == RESOLUTION
    assert torch.equal(loaded.G_ema(z, c, noise_mode='const'), G(z, c, noise_mode='const'))
