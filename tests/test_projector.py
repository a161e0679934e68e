"""projector.py: projecting an image the generator itself made recovers it, for a StyleGAN2, an
FPA and a StyleGAN3 tiny network; the files it writes round-trip through generate.py --projected-w; the
distances; bad input; and the projector depends on the generator contract alone."""

import ast
import copy
import os
import re

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import generate
import networks
import projector
from painting import animation, latents, pictures
from tests.metrics.test_metric_main import standin_vgg16
from tests.networks.test_contract import RESOLUTION, _build
from tests.painting.test_generate import assert_fails_with_one_line, read
from torch_utils import persistence

PROJECTOR_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'projector.py')

def lively(name: str, img_channels: int = 3, c_dim: int = 0) -> torch.nn.Module:
    """A tiny network whose images depend clearly on z and, for StyleGAN2, on the noise maps: the
    freshly initialised tiny FPA paints nearly one image for every z (so its parameters are
    redrawn at std 0.3), and StyleGAN2 starts with zero noise strengths (set to 0.1 here)."""
    G = _build(name, c_dim=c_dim, img_channels=img_channels).requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param_name, param in G.named_parameters():
            if param_name.endswith('noise_strength'):
                param.fill_(0.1)
            elif name == 'fpa':
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return G

def save(tmp_path, G, name: str) -> str:
    path = str(tmp_path / f'{name}.pkl')
    persistence.save_network(path, G_ema=G)
    return path

def run(script, *args):
    return CliRunner().invoke(script.main, [str(arg) for arg in args], catch_exceptions=False)

def image_of_seed(G, seed: int) -> torch.Tensor:
    return G(latents.seeds_to_z([seed], G.z_dim), None, noise_mode='const')[0]

#----------------------------------------------------------------------------
# The optimisation.

@pytest.mark.parametrize('name', ['stylegan2', 'fpa', 'stylegan3-t'])
def test_projection_recovers_a_generated_image(name):
    """Stated error: after 200 steps the image of the projected codes is within 10% of the
    starting mean squared error of the target (the start is the mean code's image), and closer
    to the target than the images of 7 other seeds are."""
    G = lively(name)
    target = image_of_seed(G, 7)
    tied = not callable(getattr(G, 'synthesis_paint', None))     # The command line's default.
    result = projector.project(G, target, projector.PyramidDistance(), num_steps=200, tied=tied, w_avg_samples=1000)
    assert result.ws.shape == (200, G.num_ws, G.w_dim)
    G_noise = copy.deepcopy(G)
    latents.set_noise_buffers(G_noise, result.noise)
    with torch.no_grad():
        projected = G_noise.synthesis(result.ws[-1:], noise_mode='const')[0]
        start = G_noise.synthesis(result.ws[:1], noise_mode='const')[0]
    mse = lambda image: float((image - target).square().mean())
    assert mse(projected) < 0.1 * mse(start), f'projection MSE {mse(projected):.3g} vs start {mse(start):.3g}'
    others = [mse(image_of_seed(G, seed)) for seed in range(7)]
    assert mse(projected) < min(others), f'projection MSE {mse(projected):.3g}, nearest other seed {min(others):.3g}'
    assert result.dists[-1] < 0.1 * result.dists[0]
    assert torch.equal(image_of_seed(G, 7), target), 'the caller\'s network is left unchanged'

@pytest.mark.parametrize('name', ['stylegan2', 'fpa'])
def test_same_seed_same_result_and_tied_codes(name):
    G = lively(name)
    target = image_of_seed(G, 3)
    project = lambda **kw: projector.project(G, target, projector.PyramidDistance(), num_steps=12, w_avg_samples=200, **kw)
    first, again, other = project(tied=False, seed=5), project(tied=False, seed=5), project(tied=False, seed=6)
    assert torch.equal(first.ws, again.ws) and first.dists == again.dists
    assert not torch.equal(first.ws, other.ws)
    assert not torch.equal(first.ws[-1, 0], first.ws[-1, -1]), 'one code per row: the rows move apart'
    tied = project(tied=True).ws
    assert torch.equal(tied, tied[:, :1].expand_as(tied)), 'tied: one code in every row'

def test_pyramid_distance():
    distance = projector.PyramidDistance()
    a, b = torch.zeros([1, 3, 32, 32]), torch.zeros([1, 3, 32, 32])
    b[:, :, :, :16] = 1 # Half the pixels differ by 1: MSE 0.5 at every level (32, 16 and 8 pixels).
    assert float((distance.features(a) - distance.features(b)).square().sum()) == pytest.approx(1.5)

#----------------------------------------------------------------------------
# The command line and its files.

@pytest.mark.parametrize('name,img_channels', [('stylegan2', 3), ('fpa', 1)])
def test_outputs_round_trip_through_generate(tmp_path, name, img_channels):
    G = lively(name, img_channels=img_channels)
    network = save(tmp_path, G, name)
    target_path = str(tmp_path / 'target-in.png')
    pictures.save_image(pictures.to_uint8(image_of_seed(G, 2)[None])[0], target_path)
    out = tmp_path / 'out'
    # --seed=0: the GIF writer merges identical consecutive frames, which some seeds' tiny projections produce.
    result = run(projector, '--network', network, '--target', target_path, '--outdir', out, '--num-steps', 30, '--device', 'cpu', '--seed', 0)
    assert result.exit_code == 0, result.output
    assert 'Distance: multi-scale pixel distance' in result.output
    assert re.search(r'step 30/30  dist \S+ +loss \S+ +elapsed .* ETA', result.output)
    paints = callable(getattr(G, 'synthesis_paint', None))
    assert ('one code for each of the' in result.output) == paints

    assert np.array_equal(read(out / 'target.png'), read(target_path))
    with np.load(out / 'projected_w.npz') as data:
        assert data['w'].shape == (1, G.num_ws, G.w_dim) and data['w'].dtype == np.float32
        assert len([key for key in data.files if key.startswith('noise:')]) == len(latents.noise_buffers(G))
    video = out / ('proj.mp4' if animation.mp4_available() else 'proj.gif')
    assert os.path.getsize(video) > 0
    if animation.mp4_available():
        import imageio_ffmpeg
        assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == 30 + 15, 'every step, then the 1.5 s hold at 10 frames/s'
    else:
        with PIL.Image.open(video) as im:
            assert im.n_frames == 30 and im.size == (2 * RESOLUTION * pictures.auto_scale(RESOLUTION) + pictures.auto_scale(RESOLUTION), RESOLUTION * pictures.auto_scale(RESOLUTION))
    painting_files = {'proj-paint.png', 'proj-paint.gif', 'proj-paint.webp'} & set(os.listdir(out))
    assert painting_files == ({'proj-paint.png', 'proj-paint.gif', 'proj-paint.webp'} if paints else set())
    if paints:
        with PIL.Image.open(out / 'proj-paint.gif') as im:
            assert im.n_frames == G.num_ws

    # generate.py --projected-w synthesises exactly proj.png (noise maps included).
    result = run(generate, '--network', network, '--projected-w', out / 'projected_w.npz', '--outdir', tmp_path / 'gen')
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / 'gen') == ['proj00.png']
    assert np.array_equal(read(tmp_path / 'gen' / 'proj00.png'), read(out / 'proj.png'))

    # Without a video: no animations.
    result = run(projector, '--network', network, '--target', target_path, '--outdir', tmp_path / 'novideo', '--num-steps', 2, '--save-video', 0, '--tied', 1)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / 'novideo')) == sorted(['target.png', 'proj.png', 'projected_w.npz'] + ['proj-paint.png'] * paints)

def test_projected_w_rows_and_bad_files(tmp_path):
    G = lively('fpa', img_channels=1)
    network = save(tmp_path, G, 'fpa')
    ws = G.mapping(latents.seeds_to_z([4, 5, 6], G.z_dim), None)
    latents.save_projected_w(str(tmp_path / 'three.npz'), ws)
    result = run(generate, '--network', network, '--projected-w', tmp_path / 'three.npz', '--outdir', tmp_path / 'gen')
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / 'gen')) == ['proj00.png', 'proj01.png', 'proj02.png']
    assert np.array_equal(read(tmp_path / 'gen' / 'proj02.png').reshape(RESOLUTION, RESOLUTION, 1), pictures.to_uint8(image_of_seed(G, 6)[None])[0])

    out = tmp_path / 'x'
    fails = lambda path, *words: assert_fails_with_one_line(run(generate, '--network', network, '--projected-w', path, '--outdir', out), '--projected-w', *words)
    fails(tmp_path / 'missing.npz', 'missing.npz', 'no such file')
    (tmp_path / 'text.npz').write_text('not an npz')
    fails(tmp_path / 'text.npz', 'text.npz', 'not a readable .npz')
    np.savez(tmp_path / 'nokey.npz', ws=ws.numpy())
    fails(tmp_path / 'nokey.npz', 'no array "w"', 'keys: ws')
    np.savez(tmp_path / 'wrong.npz', w=ws[:, :2].numpy())
    fails(tmp_path / 'wrong.npz', f'[3, 2, {G.w_dim}]', f'[N, {G.num_ws}, {G.w_dim}]')
    np.savez(tmp_path / 'noise.npz', w=ws.numpy(), **{'noise:b4.conv1.noise_const': np.zeros([4, 4])})
    fails(tmp_path / 'noise.npz', 'noise:b4.conv1.noise_const', 'matches no noise map')
    for args in ([], ['--seeds', '0', '--projected-w', tmp_path / 'three.npz'], ['--projected-w', tmp_path / 'three.npz', '--paint']):
        result = run(generate, '--network', network, '--outdir', out, *args)
        assert_fails_with_one_line(result, '--projected-w')
    assert not out.exists()

#----------------------------------------------------------------------------
# The target and the distance.

def test_target_is_centre_cropped_and_resized(tmp_path):
    rng = np.random.RandomState(0)
    wide = rng.randint(0, 256, size=[30, 50, 3]).astype(np.uint8)
    PIL.Image.fromarray(wide).save(tmp_path / 'wide.png')
    expected = np.asarray(PIL.Image.fromarray(wide[:, 10:40]).resize((16, 16), PIL.Image.LANCZOS))
    assert np.array_equal(projector.load_target(str(tmp_path / 'wide.png'), 16, 3), expected)
    grey = rng.randint(0, 256, size=[16, 16]).astype(np.uint8)
    PIL.Image.fromarray(grey).convert('RGB').save(tmp_path / 'grey-as-rgb.png')
    assert np.array_equal(projector.load_target(str(tmp_path / 'grey-as-rgb.png'), 16, 1)[:, :, 0], grey), 'equal channels are greyscale'
    PIL.Image.fromarray(grey).save(tmp_path / 'grey.png')
    assert np.array_equal(projector.load_target(str(tmp_path / 'grey.png'), 16, 3), np.repeat(grey[:, :, None], 3, axis=2))

def test_bad_input_one_line(tmp_path):
    G = lively('fpa', img_channels=1)
    network = save(tmp_path, G, 'fpa')
    rgb = np.zeros([16, 16, 3], dtype=np.uint8)
    rgb[:, :, 0] = 255
    PIL.Image.fromarray(rgb).save(tmp_path / 'red.png')
    (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 20)
    pictures.save_image(np.zeros([16, 16, 1], dtype=np.uint8), str(tmp_path / 'black.png'))
    out = tmp_path / 'out'
    cases = [
        (['--target', tmp_path / 'missing.png'], '--target', ['missing.png', 'no such file']),
        (['--target', tmp_path / 'corrupt.png'], '--target', ['corrupt.png', 'not a readable image']),
        (['--target', tmp_path / 'red.png'], '--target', ['red.png', 'colour image', 'greyscale']),
        (['--target', tmp_path / 'black.png', '--vgg16', tmp_path / 'missing-vgg16.pt'], '--vgg16', ['missing-vgg16.pt']),
        (['--target', tmp_path / 'black.png', '--class', 1], '--class', ['unconditional']),
        (['--target', tmp_path / 'black.png', '--device', 'toaster'], '--device', ['toaster']),
    ]
    for args, option, words in cases:
        assert_fails_with_one_line(run(projector, '--network', network, '--outdir', out, *args), option, *words)
    assert_fails_with_one_line(run(projector, '--network', tmp_path / 'none.pkl', '--target', tmp_path / 'black.png', '--outdir', out), '--network', 'none.pkl')
    conditional = save(tmp_path, lively('fpa', img_channels=1, c_dim=2), 'conditional')
    assert_fails_with_one_line(run(projector, '--network', conditional, '--target', tmp_path / 'black.png', '--outdir', out), '--class', 'conditional')
    (tmp_path / 'a-file').write_text('x')
    assert_fails_with_one_line(run(projector, '--network', network, '--target', tmp_path / 'black.png', '--outdir', tmp_path / 'a-file'), '--outdir')
    assert not out.exists(), 'nothing is written after a bad input'

def test_vgg16_distance_from_option_or_environment(tmp_path, monkeypatch):
    """With a VGG16 file (here a stand-in TorchScript with upstream's call form) the projector
    uses it and says so; without one, the pixel distance. As calc_metrics.py, $FPAGAN_VGG16 works too."""
    G = lively('fpa', img_channels=1)
    network = save(tmp_path, G, 'fpa')
    pictures.save_image(pictures.to_uint8(image_of_seed(G, 1)[None])[0], str(tmp_path / 'target.png'))
    vgg16 = standin_vgg16(str(tmp_path / 'vgg16.pt'))
    monkeypatch.delenv('FPAGAN_VGG16', raising=False)
    common = ['--network', network, '--target', tmp_path / 'target.png', '--num-steps', 3, '--save-video', 0]
    result = run(projector, *common, '--outdir', tmp_path / 'a', '--vgg16', vgg16)
    assert result.exit_code == 0, result.output
    assert f'Distance: LPIPS-style VGG16 features ({vgg16})' in result.output
    monkeypatch.setenv('FPAGAN_VGG16', vgg16)
    result = run(projector, *common, '--outdir', tmp_path / 'b')
    assert result.exit_code == 0 and 'Distance: LPIPS-style VGG16' in result.output, result.output
    features = projector.VGG16Distance(torch.jit.load(vgg16), vgg16).features(torch.zeros([1, 1, 8, 8]))
    assert features.shape == (1, 3 * 64) and torch.allclose(features, torch.full_like(features, 0.5)), 'pixels in [0, 255], grey repeated to RGB'

#----------------------------------------------------------------------------

def test_projector_depends_on_the_contract_alone():
    """No generator family is imported or named in projector.py's code (docstrings aside): it
    reaches generators only through the contract and capabilities (G.synthesis_paint, noise maps)."""
    with open(PROJECTOR_PY) as f:
        tree = ast.parse(f.read())
    family_modules = {kwargs.class_name.rsplit('.', 1)[0] for kwargs in networks.GENERATORS.values()}
    forbidden = {word.lower() for name in list(networks.GENERATORS) + list(family_modules) for word in re.split(r'[.\-]', name)
                 if len(word) > 1} - {'networks'}      # (Variant letters such as stylegan3-t's "t" are no family names.)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            words += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            words += [node.module or ''] + [alias.name for alias in node.names]
            assert not (node.module or '').startswith('networks'), f'projector.py imports {node.module}'
        elif isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
    for text in words:
        for token in re.findall(r'[A-Za-z0-9]+', text.lower()):
            assert token not in forbidden, f'projector.py names a generator family: "{token}" in {text!r}'

#----------------------------------------------------------------------------

def test_outputs_and_outdir_are_checked_before_optimising(tmp_path, monkeypatch):
    network = save(tmp_path, lively('fpa', img_channels=1), 'fpa')
    pictures.save_image(np.zeros([16, 16, 1], dtype=np.uint8), str(tmp_path / 'black.png'))
    optimised = []
    monkeypatch.setattr(projector, 'project', lambda *args, **kwargs: optimised.append(1))
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'projected_w.npz').write_text('precious')
    result = run(projector, '--network', network, '--target', tmp_path / 'black.png', '--outdir', out, '--save-video', 0)
    assert_fails_with_one_line(result, '--outdir', 'projected_w.npz', '--overwrite')
    assert (out / 'projected_w.npz').read_text() == 'precious'
    (tmp_path / 'a-file').write_text('x')
    result = run(projector, '--network', network, '--target', tmp_path / 'black.png', '--outdir', tmp_path / 'a-file' / 'sub')
    assert_fails_with_one_line(result, '--outdir', 'cannot write to')
    assert optimised == [], 'no optimisation before the checks'

def test_non_finite_projection_is_an_error(tmp_path, monkeypatch):
    G = lively('fpa', img_channels=1)
    network = save(tmp_path, G, 'fpa')
    pictures.save_image(np.zeros([16, 16, 1], dtype=np.uint8), str(tmp_path / 'black.png'))
    monkeypatch.setattr(projector, 'project', lambda G, *args, num_steps, **kwargs: dnnlib.EasyDict(
        ws=torch.full([num_steps, G.num_ws, G.w_dim], float('nan')), noise={}, dists=[float('nan')] * num_steps))
    result = run(projector, '--network', network, '--target', tmp_path / 'black.png', '--outdir', tmp_path / 'out', '--num-steps', 2)
    assert_fails_with_one_line(result, '--network', 'the optimisation diverged')
    assert os.listdir(tmp_path / 'out') == []

def test_float_target_by_value_range(tmp_path):
    values = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    PIL.Image.fromarray(values, mode='F').save(tmp_path / 'unit.tif')
    target = projector.load_target(str(tmp_path / 'unit.tif'), 16, 1)
    assert target.max() == 255 and target.min() == 0, 'a float image in [0, 1] is scaled by 255, not shown black'
    PIL.Image.fromarray(values * 255, mode='F').save(tmp_path / 'byte.tif')
    assert np.abs(projector.load_target(str(tmp_path / 'byte.tif'), 16, 1).astype(int) - target).max() <= 1
    PIL.Image.fromarray(values - 5, mode='F').save(tmp_path / 'negative.tif')
    with pytest.raises(ValueError, match=r'negative.tif.*outside \[0, 255\]'):
        projector.load_target(str(tmp_path / 'negative.tif'), 16, 1)

def test_projected_w_that_is_not_an_npz_archive(tmp_path):
    G = lively('fpa', img_channels=1)
    network = save(tmp_path, G, 'fpa')
    np.save(tmp_path / 'w.npy', np.zeros([1, G.num_ws, G.w_dim], dtype=np.float32))
    np.savez(tmp_path / 'objects.npz', w=np.array([{'a': 1}], dtype=object))
    for path, words in [(tmp_path / 'w.npy', ['a single array', 'expected projector.py\'s projected_w.npz']),
                        (tmp_path / 'objects.npz', ['it holds Python objects, which are never loaded']),
                        (tmp_path, ['is a directory'])]:
        result = CliRunner().invoke(generate.main, ['--network', network, '--projected-w', str(path), '--outdir', str(tmp_path / 'out')])
        assert_fails_with_one_line(result, '--projected-w', *words)
        assert 'allow_pickle' not in result.output
