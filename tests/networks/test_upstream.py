"""StyleGAN2-ADA and StyleGAN3 network pickles (networks/upstream.py, torch_utils/safe_pickle.py,
networks/loader.py): imported as data into our classes, never running the source they embed.

Fixtures are written by tests/upstream_format.py in upstream's on-disk format from our own
modules, with the top-level constructor arguments spelled as upstream's training scripts pass
them (their defaults differ from ours: the translation is what is tested). Every fixture embeds
source that would create a marker file if executed."""

import os
import pickletools

import numpy as np
import PIL.Image
import pytest
import torch

import networks
from networks import stylegan2, stylegan3
from tests.conftest import assert_close
from tests.upstream_format import module_record, payload_source, write_tensorflow_pickle, write_upstream_pickle
from training.augment import AugmentPipe

#----------------------------------------------------------------------------

def _randomise(module, seed):
    """Random values in every parameter and buffer (incl. w_avg, noise strengths), so that any
    misplaced tensor or wrong option shows in the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.is_floating_point() and not name.endswith('resample_filter'):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (0.3 if 'noise_strength' in name else 1))
    return module

# (upstream flavour, upstream G kwargs, upstream D kwargs, our equivalent G kwargs, our equivalent D kwargs)
def _case(name):
    if name == 'sg2ada-64':         # stylegan2-ada-pytorch defaults: no clamp, fp32, w_avg_beta 0.995.
        return ('stylegan2-ada',
                dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_channels=3, mapping_kwargs=dict(num_layers=2),
                     synthesis_kwargs=dict(channel_base=512, channel_max=16)),
                dict(c_dim=0, img_resolution=64, img_channels=3, channel_base=512, channel_max=16, block_kwargs={}, mapping_kwargs={},
                     epilogue_kwargs=dict(mbstd_group_size=2)),
                dict(mapping_kwargs=dict(num_layers=2, w_avg_beta=0.995), channel_base=512, channel_max=16, num_fp16_res=0, conv_clamp=None),
                dict(channel_base=512, channel_max=16, num_fp16_res=0, conv_clamp=None, mbstd_group_size=2))
    if name == 'sg2ada-cond':       # Conditional, c_dim=10.
        flavour, G, D, oG, oD = _case('sg2ada-64')
        return flavour, {**G, 'c_dim': 10}, {**D, 'c_dim': 10}, oG, oD
    if name == 'sg2ada-256-fp16':   # As upstream's train.py writes them: num_fp16_res=4, conv_clamp=256, Freeze-D.
        return ('stylegan2-ada',
                dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=256, img_channels=3, mapping_kwargs=dict(num_layers=8),
                     synthesis_kwargs=dict(channel_base=1024, channel_max=8, num_fp16_res=4, conv_clamp=256)),
                dict(c_dim=0, img_resolution=256, img_channels=3, channel_base=1024, channel_max=8, num_fp16_res=4, conv_clamp=256,
                     block_kwargs=dict(freeze_layers=2), mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4)),
                dict(mapping_kwargs=dict(num_layers=8, w_avg_beta=0.995), channel_base=1024, channel_max=8, num_fp16_res=4, conv_clamp=256),
                dict(channel_base=1024, channel_max=8, num_fp16_res=4, conv_clamp=256, mbstd_group_size=4, freeze_layers=2))
    if name == 'sg3-stylegan2':     # StyleGAN3 --cfg=stylegan2: flat synthesis kwargs, its own defaults.
        return ('stylegan3-stylegan2',
                dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
                     channel_base=256, channel_max=16, fused_modconv_default='inference_only'),
                dict(c_dim=0, img_resolution=32, img_channels=3, channel_base=256, channel_max=16, block_kwargs={}, mapping_kwargs={},
                     epilogue_kwargs=dict(mbstd_group_size=2)),
                dict(mapping_kwargs=dict(num_layers=2, w_avg_beta=0.998), channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=256,
                     fused_modconv_default='inference_only'),
                dict(channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=256, mbstd_group_size=2))
    raise KeyError(name)

def _write_case(tmp_path, name, marker, with_augment=True):
    flavour, G_up, D_up, G_ours, D_ours = _case(name)
    res, channels, c_dim = G_up['img_resolution'], G_up['img_channels'], G_up['c_dim']
    G = _randomise(stylegan2.Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=channels, **G_ours), 1).eval()
    D = _randomise(stylegan2.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=channels, **D_ours), 2).eval()
    augment = AugmentPipe(xflip=1, rotate90=1, xint=1, brightness=1, contrast=1)
    augment.p.fill_(0.375)
    src = payload_source(marker, flavour)
    entries = dict(
        G            = module_record(G, src, 'Generator', G_up),
        D            = module_record(D, src, 'Discriminator', D_up),
        G_ema        = module_record(G, src, 'Generator', G_up),
        augment_pipe = module_record(augment, payload_source(marker, 'augment'), 'AugmentPipe',
                                     dict(xflip=1, rotate90=1, xint=1, brightness=1, contrast=1)) if with_augment else None,
        training_set_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path='/data/ffhq.zip', use_labels=c_dim > 0,
                                   max_size=70000, xflip=True, resolution=res),
    )
    path = str(tmp_path / f'{name}.pkl')
    write_upstream_pickle(path, entries)
    return path, G, D

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['sg2ada-64', 'sg2ada-cond', 'sg2ada-256-fp16', 'sg3-stylegan2'])
def test_upstream_pickle_computes_the_same_function(tmp_path, name):
    marker = tmp_path / 'executed'
    path, G, D = _write_case(tmp_path, name, marker)
    net = networks.load_network(path)
    assert not marker.exists(), 'the embedded upstream source was executed'
    for key in ('G', 'G_ema'):
        assert type(net[key]) is stylegan2.Generator and not net[key].training
    assert type(net.D) is stylegan2.Discriminator
    assert float(net.augment_pipe.p) == 0.375 and net.augment_pipe.xflip == 1 and net.augment_pipe.contrast == 1
    assert net.training_set_kwargs == dict(class_name='training.dataset.ImageFolderDataset', path='/data/ffhq.zip',
                                           use_labels=G.c_dim > 0, max_size=70000, xflip=True, resolution=G.img_resolution)
    assert net.upstream_source['flavour'] == _case(name)[0]
    # Translated options (ours differ from upstream's defaults).
    assert net.G_ema.init_kwargs == G.init_kwargs and net.D.init_kwargs == D.init_kwargs
    assert net.G_ema.mapping.w_avg_beta == G.mapping.w_avg_beta

    gen = torch.Generator().manual_seed(3)
    z = torch.randn([3, 16], generator=gen, dtype=torch.float64)
    c = torch.nn.functional.one_hot(torch.tensor([1, 4, 9]), 10).double() if G.c_dim else None
    with torch.no_grad():
        expected = G.double()(z, c, truncation_psi=0.7, noise_mode='const')
        actual = net.G_ema.double()(z, c, truncation_psi=0.7, noise_mode='const')
        assert_close(actual, expected, rtol=0, atol=1e-12, name=f'{name} G_ema image')
        img = torch.randn([4, 3, G.img_resolution, G.img_resolution], generator=gen, dtype=torch.float64)
        c4 = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10).double() if G.c_dim else None
        assert_close(net.D.double()(img, c4), D.double()(img, c4), rtol=0, atol=1e-12, name=f'{name} D logits')

def test_upstream_defaults_are_translated(tmp_path):
    """A stylegan2-ada pickle that leaves conv_clamp and num_fp16_res at upstream's defaults
    (None, 0) gets them explicitly: ours default to 256 and 4."""
    path, _, _ = _write_case(tmp_path, 'sg2ada-64', tmp_path / 'executed', with_augment=False)
    net = networks.load_network(path)
    assert net.G_ema.synthesis.b64.conv1.conv_clamp is None and net.D.b64.conv0.conv_clamp is None
    assert not any(getattr(net.G_ema.synthesis, f'b{r}').use_fp16 for r in (4, 8, 16, 32, 64))
    assert net.augment_pipe is None

#----------------------------------------------------------------------------
# What is not supported says so in one line; nothing in the file is executed.

def _one_line_error(path, match):
    with pytest.raises(ValueError, match=match) as info:
        networks.load_network(str(path))
    message = str(info.value)
    assert '\n' not in message and os.path.basename(str(path)) in message and 'weights_only' not in message
    return message

def _stylegan3_case(tmp_path, config, marker):
    """A StyleGAN3-T/-R pickle with upstream's constructor arguments (as its train.py writes
    them), random weights and magnitude EMAs, and the discriminator of networks_stylegan2.py."""
    G_up = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                channel_base=256, channel_max=16, magnitude_ema_beta=0.5 ** (32 / 20000), num_fp16_res=4, conv_clamp=256,
                num_layers=4, margin_size=4, **(dict(conv_kernel=1, use_radial_filters=True) if config == 'r' else {}))
    torch.manual_seed(0)
    G = stylegan3.Generator(**G_up).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in list(G.named_parameters()) + [('w_avg', G.mapping.w_avg)]:
            tensor.copy_(torch.randn(tensor.shape, generator=gen))
        for name, tensor in G.named_buffers():
            if name.endswith('magnitude_ema'):
                tensor.copy_(torch.rand([], generator=gen) + 0.5)
    D = _randomise(stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16), 2).eval()
    D_up = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, block_kwargs={}, mapping_kwargs={},
                epilogue_kwargs=dict(mbstd_group_size=4), num_fp16_res=4, conv_clamp=256)
    path = tmp_path / f'sg3{config}.pkl'
    write_upstream_pickle(path, dict(G_ema=module_record(G, payload_source(marker, 'stylegan3'), 'Generator', G_up),
                                     D=module_record(D, payload_source(marker, 'stylegan3-stylegan2'), 'Discriminator', D_up)))
    return str(path), G, D

@pytest.mark.parametrize('config', ['t', 'r'])
def test_stylegan3_pickle_computes_the_same_function(tmp_path, config):
    """StyleGAN3-T and -R load into networks.stylegan3.Generator by name, with upstream's
    constructor arguments unchanged, and compute the same images (also under a user transform)."""
    marker = tmp_path / 'executed'
    path, G, D = _stylegan3_case(tmp_path, config, marker)
    net = networks.load_network(path)
    assert not marker.exists(), 'the embedded upstream source was executed'
    assert type(net.G_ema) is stylegan3.Generator and not net.G_ema.training
    assert net.G_ema.init_kwargs == G.init_kwargs
    assert net.upstream_source['flavour'] == 'stylegan3, stylegan3-stylegan2'
    z = torch.randn([3, 16], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    G, G_ema = G.double(), net.G_ema.double()
    with torch.no_grad():
        assert_close(G_ema(z, None, truncation_psi=0.7), G(z, None, truncation_psi=0.7), rtol=0, atol=1e-12, name='image')
        for module in (G, G_ema):
            networks.set_input_transform(module, translate=(0.1, -0.2), rotate=20)
        assert_close(G_ema(z, None), G(z, None), rtol=0, atol=1e-12, name='transformed image')
        img = torch.randn([4, 3, 16, 16], dtype=torch.float64)
        assert_close(net.D.double()(img, None), D.double()(img, None), rtol=0, atol=1e-12, name='D logits')

def test_stylegan3_pickle_with_mismatching_tensors_is_one_line(tmp_path):
    """A pickle whose stored arguments do not produce its tensors (here T's arguments with R's
    1x1 weights) is refused in one line naming the differences."""
    _, G, _ = _stylegan3_case(tmp_path, 'r', tmp_path / 'executed')
    G_up = {k: v for k, v in G.init_kwargs.items() if k not in ('conv_kernel', 'use_radial_filters')}
    write_upstream_pickle(tmp_path / 'bad.pkl', dict(G_ema=module_record(G, payload_source(tmp_path / 'executed', 'stylegan3'), 'Generator', G_up)))
    _one_line_error(tmp_path / 'bad.pkl', r'L0_24_16.weight of shape \[16, 16, 3, 3\], the file stores \[16, 16, 1, 1\]')
    assert not (tmp_path / 'executed').exists()

def test_tensorflow_pickle_is_refused(tmp_path):
    write_tensorflow_pickle(tmp_path / 'tf.pkl')
    _one_line_error(tmp_path / 'tf.pkl', r'TensorFlow-era StyleGAN pickle \(dnnlib.tflib.network.Network\) is not supported')

def test_unknown_class_is_refused(tmp_path):
    marker = tmp_path / 'executed'
    layer = torch.nn.Linear(2, 2)
    write_upstream_pickle(tmp_path / 'other.pkl', dict(G_ema=module_record(layer, payload_source(marker, 'stylegan2-ada'), 'MyGenerator', {})))
    _one_line_error(tmp_path / 'other.pkl', r'upstream class "MyGenerator" is not supported')
    assert not marker.exists()

def test_truncated_pickle_is_refused(tmp_path):
    path, _, _ = _write_case(tmp_path, 'sg2ada-64', tmp_path / 'executed', with_augment=False)
    data = open(path, 'rb').read()
    with open(tmp_path / 'cut.pkl', 'wb') as f:
        f.write(data[:len(data) // 2])
    _one_line_error(tmp_path / 'cut.pkl', r'truncated pickle')

def test_mismatched_tensors_are_listed(tmp_path):
    """Constructor arguments that do not fit the stored tensors: one line listing what differs."""
    marker = tmp_path / 'executed'
    flavour, G_up, _, G_ours, _ = _case('sg2ada-64')
    G = stylegan2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_channels=3, **G_ours)
    wrong = {**G_up, 'synthesis_kwargs': dict(channel_base=1024, channel_max=16)}     # Claims wider early layers.
    write_upstream_pickle(tmp_path / 'wrong.pkl', dict(G_ema=module_record(G, payload_source(marker, flavour), 'Generator', wrong)))
    message = _one_line_error(tmp_path / 'wrong.pkl', r'G_ema: init_kwargs make synthesis\.b\d+\.\S+ of shape \[\d+, \d+, 3, 3\], the file stores \[')
    assert message.count('the file stores') == 3 and 'more tensors' in message, 'the differing tensors are listed'

def test_absurd_sizes_allocate_nothing(tmp_path):
    """Constructor arguments asking for terabytes are refused before any memory is allocated
    (persistence.check_init_kwargs: a bound on integers, then fake tensors against the file's)."""
    flavour, G_up, _, G_ours, _ = _case('sg2ada-64')
    G = stylegan2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_channels=3, **G_ours)
    huge = {**G_up, 'z_dim': 2 ** 40}
    write_upstream_pickle(tmp_path / 'huge.pkl', dict(G_ema=module_record(G, payload_source(tmp_path / 'x', flavour), 'Generator', huge)))
    _one_line_error(tmp_path / 'huge.pkl', r'init_kwargs.z_dim=1099511627776 is above the limit 65536')
    wide = {**G_up, 'synthesis_kwargs': dict(channel_base=65536, channel_max=65536)}    # Within the integer bound: fake tensors.
    write_upstream_pickle(tmp_path / 'wide.pkl', dict(G_ema=module_record(G, payload_source(tmp_path / 'x', flavour), 'Generator', wide)))
    _one_line_error(tmp_path / 'wide.pkl', r'init_kwargs make synthesis\.b4\.const of shape \[16384, 4, 4\], the file stores \[16, 4, 4\]')

def test_hostile_globals_are_never_called(tmp_path):
    """A pickle whose data calls os.system / writes a file through builtins.open: the names
    resolve to inert stand-ins, nothing runs, and the file is refused in one line."""
    marker = tmp_path / 'pwned'
    payload = (b'\x80\x02}q\x00(X\x05\x00\x00\x00G_emaq\x01cos\nsystem\nq\x02X' + len(f'touch {marker}').to_bytes(4, 'little')
               + f'touch {marker}'.encode() + b'q\x03\x85q\x04Rq\x05X\x13\x00\x00\x00training_set_kwargsq\x06cbuiltins\nopen\nq\x07X'
               + len(str(marker)).to_bytes(4, 'little') + str(marker).encode() + b'X\x01\x00\x00\x00w\x86Rq\x08u.')
    (tmp_path / 'hostile.pkl').write_bytes(payload)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(payload)]     # A well-formed pickle calling both:
    assert ('GLOBAL', 'os system') in ops and ('GLOBAL', 'builtins open') in ops and [n for n, _ in ops].count('REDUCE') == 2
    _one_line_error(tmp_path / 'hostile.pkl', r'not a network file .*found classes builtins.open, os.system')
    assert not marker.exists()

#----------------------------------------------------------------------------
# Every entry point takes an upstream pickle: train.py --resume (path, http URL, upstream's
# names), generate.py, calc_metrics.py, legacy.py, the painting API.

def _tiny_auto_pair(tmp_path, marker, img_resolution=16):
    """An upstream-format pickle whose networks fit train.py --cfg=auto --cbase=256 --cmax=32 at
    16x16 (z_dim = w_dim = 512, two mapping layers), as stylegan2-ada's train.py writes it."""
    torch.manual_seed(5)
    ours_G = dict(mapping_kwargs=dict(num_layers=2, w_avg_beta=0.995), channel_base=256, channel_max=32, num_fp16_res=4, conv_clamp=256)
    G = _randomise(stylegan2.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=img_resolution, img_channels=3, **ours_G), 7).eval()
    D = _randomise(stylegan2.Discriminator(c_dim=0, img_resolution=img_resolution, img_channels=3, channel_base=256, channel_max=32), 8).eval()
    G_up = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=img_resolution, img_channels=3, mapping_kwargs=dict(num_layers=2),
                synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=4, conv_clamp=256))
    D_up = dict(c_dim=0, img_resolution=img_resolution, img_channels=3, channel_base=256, channel_max=32, num_fp16_res=4, conv_clamp=256,
                block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    src = payload_source(marker, 'stylegan2-ada')
    path = tmp_path / f'upstream{img_resolution}.pkl'
    write_upstream_pickle(path, dict(G=module_record(G, src, 'Generator', G_up), D=module_record(D, src, 'Discriminator', D_up),
                                     G_ema=module_record(G, src, 'Generator', G_up), augment_pipe=None, training_set_kwargs=None))
    return str(path), G, D

@pytest.fixture
def http_server(tmp_path):
    """A file server on 127.0.0.1 (an ephemeral port) over tmp_path/www, stopped after the test."""
    import functools
    import http.server
    import threading
    root = tmp_path / 'www'
    root.mkdir()
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()

def test_transfer_learning_from_a_url_and_a_name(tmp_path, http_server, monkeypatch):
    """train.py --resume=http://... trains a new run from the upstream weights (a new run
    directory, kimg from 0), and --resume=ffhq256 reads upstream's URL through the download
    cache (pre-filled here: no network)."""
    import hashlib
    import shutil
    from click.testing import CliRunner
    import train
    from networks import loader
    from tests.training.conftest import make_image_folder
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    marker = tmp_path / 'executed'
    path, G, D = _tiny_auto_pair(tmp_path, marker)
    www, base_url = http_server
    shutil.copy(path, www / 'net.pkl')
    data = make_image_folder(tmp_path / 'data')
    tiny = ['--cfg=auto', '--cbase=256', '--cmax=32', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu',
            '--kimg=0.004', '--tick=0.004', '--snap=1', f'--data={data}']

    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', *tiny, f'--resume={base_url}/net.pkl'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / 'runs' / '00000-data-auto1-kimg0.004-batch4-noaug-resume'
    assert f'Starting from the weights in "{base_url}/net.pkl"' in (run_dir / 'log.txt').read_text()
    assert 'network-snapshot-000000.pkl' in os.listdir(run_dir) and not marker.exists()
    snapshot = networks.load_network(str(run_dir / 'network-snapshot-000000.pkl'))
    up = dict(G.named_parameters())     # One Adam step (lr 0.0025) from the upstream weights moves each by about lr;
    step = max(float((p.detach() - up[name].detach()).abs().max()) for name, p in snapshot.G.named_parameters())   # a fresh init differs by O(1).
    assert 0 < step < 0.05, step

    url = loader.UPSTREAM_NETWORKS['ffhq256']
    cache = tmp_path / 'cache' / 'downloads'
    cache.mkdir(parents=True, exist_ok=True)     # The http download above is cached here too.
    shutil.copy(path, cache / f'{hashlib.md5(url.encode()).hexdigest()}_{os.path.basename(url)}')
    net = networks.load_network('ffhq256')
    assert torch.equal(net.G_ema.synthesis.b16.torgb.weight, G.synthesis.b16.torgb.weight)
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', *tiny, '--resume=ffhq256', '--dry-run'], catch_exceptions=False)
    assert result.exit_code == 0 and '"resume_pkl": "ffhq256"' in result.output, result.output

def test_transfer_learning_mismatch_is_one_line(tmp_path):
    from click.testing import CliRunner
    import train
    from tests.training.conftest import make_image_folder
    path, _, _ = _tiny_auto_pair(tmp_path, tmp_path / 'executed', img_resolution=16)
    data = make_image_folder(tmp_path / 'data')
    tiny = ['--cfg=auto', '--cbase=512', '--cmax=32', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu', f'--data={data}']
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', *tiny, f'--resume={path}'])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and 'tensors differ in shape (source vs destination)' in lines[0] and 'synthesis.b16.conv0.weight [16, 32, 3, 3] vs [32, 32, 3, 3]' in lines[0], result.output
    assert not (tmp_path / 'runs').exists()
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', *tiny, f'--resume={tmp_path / "nope.pkl"}'])
    assert result.exit_code == 1 and 'no such file' in result.output and 'ffhq256' in result.output

def test_unreachable_url_is_one_line(tmp_path, http_server, monkeypatch):
    """A URL that cannot be fetched (here a 404 of the local server: final, not retried) stops
    train.py --resume in one line naming it, before any directory is made."""
    from click.testing import CliRunner
    import train
    from tests.training.conftest import make_image_folder
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    _, base_url = http_server
    data = make_image_folder(tmp_path / 'data')
    url = f'{base_url}/missing.pkl'
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={data}', '--cfg=auto', '--cbase=256', '--cmax=32',
                                             '--metrics=none', '--device=cpu', f'--resume={url}'])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and url in lines[0] and 'download failed after 1 attempt (' in lines[0], result.output
    assert not (tmp_path / 'runs').exists()

def test_scripts_accept_upstream_pickles(tmp_path):
    """generate.py, legacy.py (-> a code-free network file), networks.load_network (what
    calc_metrics.py calls) and the painting API all read an upstream pickle, and give one line
    for a StyleGAN3 alias-free one."""
    import subprocess
    import sys
    from click.testing import CliRunner
    import legacy
    from painting import api
    marker = tmp_path / 'executed'
    path, G, _ = _write_case(tmp_path, 'sg2ada-cond', marker)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(repo, 'generate.py'), f'--network={path}', '--seeds=0-1', '--class=3',
                           f'--outdir={tmp_path / "out"}', '--device=cpu'], cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / 'out')) == ['seed0000.png', 'seed0001.png']

    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={tmp_path / "ours.pkl"}'])
    assert run.exit_code == 0 and 'upstream network pickle (stylegan2-ada)' in run.output, run.output
    ours = networks.load_network(str(tmp_path / 'ours.pkl'))
    assert float(ours.augment_pipe.p) == 0.375 and ours.upstream_source['flavour'] == 'stylegan2-ada'
    assert torch.equal(ours.G_ema.mapping.w_avg, G.mapping.w_avg)

    assert networks.load_network(path).training_set_kwargs.path == '/data/ffhq.zip'
    assert api.load_generator(path, device='cpu').c_dim == 10
    assert not marker.exists()

def test_scripts_accept_stylegan3_pickles(tmp_path):
    """generate.py (with --translate/--rotate, and a one-line refusal of them for StyleGAN2),
    legacy.py, calc_metrics.py's loader and the painting API read StyleGAN3-R pickles."""
    import subprocess
    import sys
    from click.testing import CliRunner
    import legacy
    from painting import api
    marker = tmp_path / 'executed'
    path, G, _ = _stylegan3_case(tmp_path, 'r', marker)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    def generate(network, *options):
        return subprocess.run([sys.executable, os.path.join(repo, 'generate.py'), f'--network={network}', '--seeds=0', *options,
                               '--device=cpu'], cwd=repo, capture_output=True, text=True, timeout=300)
    proc = generate(path, f'--outdir={tmp_path / "plain"}')
    assert proc.returncode == 0, proc.stderr
    proc = generate(path, f'--outdir={tmp_path / "moved"}', '--translate=0.25,0', '--rotate=90')
    assert proc.returncode == 0, proc.stderr
    plain, moved = (np.asarray(PIL.Image.open(tmp_path / d / 'seed0000.png')) for d in ('plain', 'moved'))
    assert plain.shape == moved.shape == (16, 16, 3) and not np.array_equal(plain, moved)

    sg2_path, _, _ = _write_case(tmp_path, 'sg2ada-64', marker, with_augment=False)
    proc = generate(sg2_path, f'--outdir={tmp_path / "sg2"}', '--rotate=10')
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1 and '--rotate' in proc.stderr \
        and 'no input transform' in proc.stderr, proc.stderr
    assert not (tmp_path / 'sg2').exists()

    run = CliRunner().invoke(legacy.convert_main, [f'--source={path}', f'--dest={tmp_path / "ours.pkl"}'])
    assert run.exit_code == 0, run.output
    ours = networks.load_network(str(tmp_path / 'ours.pkl'))
    assert type(ours.G_ema) is stylegan3.Generator and torch.equal(ours.G_ema.synthesis.input.freqs, G.synthesis.input.freqs)
    assert type(networks.load_network(path).G_ema) is stylegan3.Generator     # The one door calc_metrics.py and train.py read through.
    assert api.load_generator(path, device='cpu').num_ws == G.num_ws
    assert not marker.exists()

#----------------------------------------------------------------------------

def test_stylegan3_named_sources_go_through_the_download_cache(tmp_path, monkeypatch):
    """upstream's pretrained file names (stylegan3-t-ffhqu-256x256.pkl, ...) resolve to its URLs
    and load from the download cache (pre-filled here: no network); a local file of that name wins."""
    import hashlib
    import shutil
    from networks import loader
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.chdir(tmp_path)
    path, G, _ = _stylegan3_case(tmp_path, 't', tmp_path / 'executed')
    name = 'stylegan3-t-ffhqu-256x256.pkl'
    url = loader.UPSTREAM_NETWORKS[name]
    assert url == f'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/{name}'
    assert len([n for n in loader.UPSTREAM_NETWORKS if n.startswith('stylegan3-')]) == 12
    cache = tmp_path / 'cache' / 'downloads'
    cache.mkdir(parents=True)
    shutil.copy(path, cache / f'{hashlib.md5(url.encode()).hexdigest()}_{name}')
    assert loader.is_remote_source(name) and torch.equal(networks.load_network(name).G_ema.synthesis.input.freqs, G.synthesis.input.freqs)
    (tmp_path / name).write_bytes(b'')              # A local file of that name is read instead (here: an empty one).
    assert not loader.is_remote_source(name)
    with pytest.raises(ValueError, match=f'^{name}: empty file$'):
        networks.load_network(name)

def test_transfer_learning_from_a_stylegan3_pickle(tmp_path):
    """train.py --cfg=stylegan3-t-cpu --resume=PICKLE starts a new run from a StyleGAN3-T
    pickle's weights (its untrained buffers, such as the Fourier frequencies, come along)."""
    import json
    from click.testing import CliRunner
    import dnnlib
    import train
    from tests.training.conftest import make_image_folder
    data = make_image_folder(tmp_path / 'data')
    cli = [f'--data={data}', '--cfg=stylegan3-t-cpu', '--cbase=256', '--cmax=16', '--batch=4', '--aug=noaug', '--metrics=none',
           '--workers=0', '--device=cpu', '--kimg=0.004', '--tick=0.004', '--snap=1']
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "dry"}', *cli, '--dry-run'], catch_exceptions=False)
    options = json.loads(result.output[result.output.index('{'):result.output.rindex('}') + 1])
    torch.manual_seed(123)
    G = dnnlib.util.construct_class_by_name(**options['G_kwargs'], c_dim=0, img_resolution=16, img_channels=3)
    G_up = {k: v for k, v in G.init_kwargs.items()}
    marker = tmp_path / 'executed'
    write_upstream_pickle(tmp_path / 'sg3.pkl', dict(G=module_record(G, payload_source(marker, 'stylegan3'), 'Generator', G_up),
                                                     G_ema=module_record(G, payload_source(marker, 'stylegan3'), 'Generator', G_up)))
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', *cli, f'--resume={tmp_path / "sg3.pkl"}'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / 'runs').iterdir()
    net = networks.load_network(str(run_dir / 'network-snapshot-000000.pkl'))
    assert torch.equal(net.G_ema.synthesis.input.freqs, G.synthesis.input.freqs)
    assert not marker.exists()
