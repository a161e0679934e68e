"""Export to StyleGAN2-ADA's pickle format (networks/export.py, legacy.py --to=upstream).

Upstream's code is not used: tests/upstream_format.py's stand-in upstream environment
unpickles an export as upstream's persistence does (the embedded source executed in a fresh
module against upstream-signature torch_utils/dnnlib modules) and the networks it yields must
compute what ours compute. Our own loader must read the export back without running any of
its code."""

import copy
import pickle

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import legacy
import networks
from networks import export
from tests.upstream_format import load_as_upstream, upstream_environment
from torch_utils import persistence
from training.augment import AugmentPipe

#----------------------------------------------------------------------------

KINDS = dict(
    stylegan2 = dict(class_name='networks.stylegan2.Generator', z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
                     channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2)),
    fpa       = dict(class_name='networks.fpa.Generator', z_dim=16, c_dim=0, img_resolution=8, img_channels=3, num_steps=4,
                     step_latent_dim=4, step_input_dim=8, hidden_dim=16),
    fpa_unet  = dict(class_name='networks.fpa.Generator', z_dim=16, c_dim=3, img_resolution=8, img_channels=1, num_steps=4,
                     step_latent_dim=4, step_input_dim=8, hidden_dim=16, unet_kwargs=dict(dim=4, dim_mults=[1, 2], norm_groups=2, attn_heads=2, attn_head_dim=4)),
)

def _randomise(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.is_floating_point() and not name.endswith(('resample_filter', 'p')):
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.2)
    return module.eval().requires_grad_(False)

def _networks(kind):
    G = _randomise(dnnlib.util.construct_class_by_name(**KINDS[kind]), 1)
    D = _randomise(dnnlib.util.construct_class_by_name(class_name='networks.stylegan2.Discriminator', c_dim=G.c_dim,
                                                       img_resolution=G.img_resolution, img_channels=G.img_channels,
                                                       channel_base=128, channel_max=16, mbstd_group_size=2), 2)
    augment_pipe = AugmentPipe(xflip=1, rotate90=1, xint=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1).eval()
    augment_pipe.p.fill_(0.25)
    return dnnlib.EasyDict(G=G, D=D, G_ema=_randomise(copy.deepcopy(G), 3), augment_pipe=augment_pipe,
                           training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path='data.zip', use_labels=G.c_dim > 0))

def _inputs(G, batch=4):
    gen = torch.Generator().manual_seed(7)
    z = torch.randn([batch, G.z_dim], generator=gen)
    c = torch.nn.functional.one_hot(torch.arange(batch) % G.c_dim, G.c_dim).float() if G.c_dim else None
    return z, c

@pytest.fixture(scope='module', params=list(KINDS))
def exported(request, tmp_path_factory):
    nets = _networks(request.param)
    path = tmp_path_factory.mktemp('export') / f'{request.param}.pkl'
    export.export_upstream_pickle(str(path), **nets)
    return request.param, nets, path

#----------------------------------------------------------------------------

def test_upstream_environment_computes_our_images(exported):
    kind, nets, path = exported
    data = load_as_upstream(path)
    assert set(data) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    G = data['G_ema']
    assert type(G).__mro__[1].__module__.startswith('_imported_module_') and type(G).__name__ == 'Generator'   # Exec'd source.
    assert G.init_kwargs == nets.G_ema.init_kwargs and data['training_set_kwargs'] == nets.training_set_kwargs
    z, c = _inputs(G)
    with upstream_environment():
        # generate.py's call (float64 z, from numpy), then projector.py's: mapping, ws repeated over num_ws, synthesis with a gradient.
        img = G(z.double(), c, truncation_psi=0.7, noise_mode='const')
        ws = G.mapping(z, c)
        w_opt = ws[:, :1].clone().requires_grad_(True)
        G.synthesis(w_opt.repeat([1, G.mapping.num_ws, 1]), noise_mode='const').square().sum().backward()
        logits = data['D'](img, c)
        augmented = data['augment_pipe'](img)
    assert torch.equal(img, nets.G_ema(z, c, truncation_psi=0.7, noise_mode='const'))
    assert torch.equal(logits, nets.D(img, c))
    assert augmented.shape == img.shape and w_opt.grad.abs().sum() > 0
    assert sorted(name for name, _ in G.named_parameters()) == sorted(name for name, _ in nets.G_ema.named_parameters())
    if kind == 'stylegan2':     # Upstream's attribute names, as downstream code walks them.
        assert G.synthesis.b16.conv1.weight.shape == nets.G_ema.synthesis.b16.conv1.weight.shape
        assert torch.equal(G.mapping.w_avg, nets.G_ema.mapping.w_avg)

def test_upstream_environment_deepcopies_and_repickles(exported):
    """What upstream's scripts do next: copy.deepcopy(G) (projector.py) and pickle it again."""
    _, nets, path = exported
    G = load_as_upstream(path)['G_ema']
    z, c = _inputs(G)
    with upstream_environment():
        again = pickle.loads(pickle.dumps(copy.deepcopy(G)))
        img = again(z, c, noise_mode='const')
    assert torch.equal(img, nets.G_ema(z, c, noise_mode='const'))

def test_round_trip_through_our_loader(exported):
    _, nets, path = exported
    loaded = networks.load_network(str(path))
    assert loaded.upstream_source['flavour'] == 'exported by this codebase'
    for name in ('G', 'D', 'G_ema', 'augment_pipe'):
        ours, back = nets[name], loaded[name]
        assert type(back) is type(ours) and back.init_kwargs == ours.init_kwargs, name
        assert ours.state_dict().keys() == back.state_dict().keys()
        assert all(torch.equal(a, back.state_dict()[k]) for k, a in ours.state_dict().items()), name
    assert loaded.training_set_kwargs == nets.training_set_kwargs

def test_our_loader_never_runs_the_embedded_source(tmp_path):
    """An export whose every embedded source would write a file (and raise) loads with our
    loader as the networks it holds; the stand-in upstream environment does run it."""
    nets = _networks('fpa')
    marker = tmp_path / 'executed'
    payload = f'import pathlib\npathlib.Path({str(marker)!r}).write_text("ran")\nraise RuntimeError("embedded source executed")\n'
    sources = {name: f'{export.EXPORT_HEADER}{name}\n{payload}' for name in export.EXPORTED_MODULES}
    path = tmp_path / 'poisoned.pkl'
    path.write_bytes(export.export_bytes(dict(nets), sources=sources))
    loaded = networks.load_network(str(path))
    z, c = _inputs(nets.G_ema)
    assert torch.equal(loaded.G_ema(z, c), nets.G_ema(z, c))
    assert not marker.exists()
    with pytest.raises(RuntimeError, match='embedded source executed'):
        load_as_upstream(path)
    assert marker.exists()      # The payload is live: only our loader refuses to run it.

def test_export_header_cannot_name_other_classes(tmp_path):
    nets = _networks('fpa')
    sources = {name: f'{export.EXPORT_HEADER}os\n' for name in export.EXPORTED_MODULES}
    path = tmp_path / 'other.pkl'
    path.write_bytes(export.export_bytes(dict(nets), sources=sources))
    with pytest.raises(ValueError, match=r'other\.pkl: G: exported class "os.Generator" is not a network class of this codebase'):
        networks.load_network(str(path))

def test_embedded_sources_import_only_what_upstream_has():
    for name in export.EXPORTED_MODULES:
        src = export.module_source(name)
        assert export.exported_module_name(src) == name and src.rstrip().endswith('misc = _MiscWithNames(misc)')
    with pytest.raises(ValueError, match=r'networks.x: imports networks, training.loss, which an upstream checkout does not provide'):
        export.check_source_imports('networks.x', 'import torch\nfrom networks import unet\nimport training.loss\nfrom torch_utils import misc\n')

def test_export_refuses_what_upstream_cannot_hold(tmp_path):
    nets = _networks('fpa')
    with pytest.raises(ValueError, match=r'x\.pkl: upstream network pickles need D, a module; the source has none'):
        export.export_upstream_pickle(str(tmp_path / 'x.pkl'), **{**nets, 'D': None})
    G = copy.deepcopy(nets.G)
    G.helper = legacy.with_fp16            # A reference to code an upstream checkout does not have.
    with pytest.raises(ValueError, match=r'cannot export a reference to legacy.with_fp16'):
        export.export_bytes(dict(G=G))
    assert not (tmp_path / 'x.pkl').exists()

#----------------------------------------------------------------------------
# legacy.py --to=upstream, --force-fp16.

def test_cli_exports_and_keeps_the_code_free_default(tmp_path):
    nets = _networks('stylegan2')
    persistence.save_network(str(tmp_path / 'ours.pkl'), **nets)
    run = CliRunner().invoke(legacy.convert_main, [f'--source={tmp_path / "ours.pkl"}', f'--dest={tmp_path / "up.pkl"}', '--to=upstream'])
    assert run.exit_code == 0, run.output
    assert 'carries the code of its networks' in run.output
    G = load_as_upstream(tmp_path / 'up.pkl')['G_ema']
    z, c = _inputs(G)
    with upstream_environment():
        img = G(z, c, noise_mode='const')
    assert torch.equal(img, nets.G_ema(z, c, noise_mode='const'))
    run = CliRunner().invoke(legacy.convert_main, [f'--source={tmp_path / "up.pkl"}', f'--dest={tmp_path / "back.pkl"}'])
    assert run.exit_code == 0, run.output
    assert persistence.is_network_data(torch.load(tmp_path / 'back.pkl', weights_only=True))    # The default: code-free.
    run = CliRunner().invoke(legacy.convert_main, [f'--source={tmp_path / "ours.pkl"}', f'--dest={tmp_path / "up.pkl"}', '--to=upstream'])
    assert run.exit_code == 1 and 'already exists' in run.output

def test_force_fp16(tmp_path):
    nets = _networks('stylegan2')
    persistence.save_network(str(tmp_path / 'ours.pkl'), **nets)
    run = CliRunner().invoke(legacy.convert_main, [f'--source={tmp_path / "ours.pkl"}', f'--dest={tmp_path / "fp16.pkl"}', '--force-fp16=True'])
    assert run.exit_code == 0, run.output
    loaded = networks.load_network(str(tmp_path / 'fp16.pkl'))
    for name in ('G', 'G_ema', 'D'):
        assert loaded[name].init_kwargs.num_fp16_res == 4 and loaded[name].init_kwargs.conv_clamp == 256
        assert all(torch.equal(v, nets[name].state_dict()[k]) for k, v in loaded[name].state_dict().items())
    fpa = _networks('fpa')
    assert legacy.with_fp16(fpa.G) is fpa.G        # No fp16 layers in the FPA: unchanged.

#----------------------------------------------------------------------------
