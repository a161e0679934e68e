"""generate.py end to end on tiny networks saved in temporary directories: the files it writes,
and one clear line with a non-zero exit for every kind of bad input."""

import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
from painting import animation, api, latents, paintings, pictures
from tests.networks.test_contract import RESOLUTION
from tests.painting.test_api import ALL, PAINTERS, build
from tests.test_legacy import CASES, _reference_kwargs, make_checkpoint, reference_forward, reference_layout
from torch_utils import persistence

NON_PAINTERS = [name for name in ALL if name not in PAINTERS]

def save(tmp_path, name: str, c_dim: int = 0, img_channels: int = 3) -> str:
    path = str(tmp_path / f'{name}-c{c_dim}-ch{img_channels}.pkl')
    persistence.save_network(path, G_ema=build(name, c_dim=c_dim, img_channels=img_channels), training_set_kwargs=dict(resolution=RESOLUTION))
    return path

def run(*args: str):
    return CliRunner().invoke(generate.main, [str(arg) for arg in args], catch_exceptions=False)

def read(path) -> np.ndarray:
    with PIL.Image.open(path) as im:
        return np.asarray(im)

def assert_fails_with_one_line(result, option: str, *words: str) -> None:
    assert result.exit_code != 0, f'expected a failure, got exit 0:\n{result.output}'
    assert 'Traceback' not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, result.output
    assert option in errors[0], f'"{option}" not named in: {errors[0]}'
    for word in words:
        assert word in errors[0], f'"{word}" not in: {errors[0]}'

#----------------------------------------------------------------------------

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('img_channels', [1, 3])
def test_images_per_seed(tmp_path, name, img_channels):
    network = save(tmp_path, name, img_channels=img_channels)
    seeds = [0, 3, 5, 6]
    for batch in (1, 3):
        result = run('--network', network, '--seeds', '0,3,5-6', '--outdir', tmp_path / f'b{batch}', '--batch', batch, '--device', 'cpu')
        assert result.exit_code == 0, result.output
        assert sorted(os.listdir(tmp_path / f'b{batch}')) == [f'seed{seed:04d}.png' for seed in seeds]
    for seed in seeds:
        with PIL.Image.open(tmp_path / 'b1' / f'seed{seed:04d}.png') as im:
            assert im.mode == ('L' if img_channels == 1 else 'RGB') and im.size == (RESOLUTION, RESOLUTION)
        one, three = read(tmp_path / 'b1' / f'seed{seed:04d}.png'), read(tmp_path / 'b3' / f'seed{seed:04d}.png')
        assert np.abs(one.astype(int) - three).max() <= 1, 'the same seed must give the same image whatever the batch size'
    G = build(name, img_channels=img_channels)
    expected = pictures.to_uint8(G(latents.seeds_to_z([5], G.z_dim), None, noise_mode='const'))[0]
    assert np.abs(read(tmp_path / 'b1' / 'seed0005.png').reshape(expected.shape).astype(int) - expected).max() <= 1

@pytest.mark.parametrize('name', ALL[:1] + NON_PAINTERS[:1])
def test_conditional(tmp_path, name):
    network = save(tmp_path, name, c_dim=3)
    result = run('--network', network, '--seeds', '1', '--class', 2, '--outdir', tmp_path / 'out')
    assert result.exit_code == 0, result.output
    assert os.path.isfile(tmp_path / 'out' / 'seed0001.png')
    assert_fails_with_one_line(run('--network', network, '--seeds', '1', '--class', 3, '--outdir', tmp_path / 'x'), '--class', 'out of range', '0..2')
    assert_fails_with_one_line(run('--network', network, '--seeds', '1', '--outdir', tmp_path / 'x'), '--class', 'conditional')
    unconditional = save(tmp_path, name)
    result = run('--network', unconditional, '--seeds', '1', '--class', 0, '--outdir', tmp_path / 'u')
    assert result.exit_code == 0, result.output
    assert 'warning: --class=0 ignored: the network is unconditional' in result.output
    assert os.path.isfile(tmp_path / 'u' / 'seed0001.png')

@pytest.mark.parametrize('name', PAINTERS)
def test_painting_outputs(tmp_path, name):
    network = save(tmp_path, name)
    out = tmp_path / 'out'
    result = run('--network', network, '--seeds', '2,4', '--outdir', out, '--paint', '--paint-channels', '--paint-animation',
                 '--anim-updates', '--scale', 2, '--frame-ms', 40, '--hold-ms', 400)
    assert result.exit_code == 0, result.output
    G = build(name)
    T, N = G.num_ws, RESOLUTION
    refined = paintings.paint_seeds(G, [2]).refined is not None
    cols = T + refined
    with PIL.Image.open(out / 'paint-seed0002.png') as im:
        assert im.size == (cols * 2 * N + (cols - 1) * 2, 2 * 2 * N + 2)
    assert os.path.isfile(out / 'paint-seed0004-channels.png')
    for suffix in ('.gif', '.webp'):
        with PIL.Image.open(out / f'paint-seed0004{suffix}') as im:
            assert im.n_frames == T + refined and im.size == (2 * 2 * N + 2, 2 * N)
    if animation.mp4_available():
        assert os.path.getsize(out / 'paint-seed0004.mp4') > 0
    else:
        assert animation.MP4_MISSING in result.output

@pytest.mark.parametrize('name', PAINTERS[:1] + NON_PAINTERS[:1])
def test_interpolation_and_style_mixing(tmp_path, name):
    network = save(tmp_path, name)
    out = tmp_path / 'out'
    result = run('--network', network, '--seeds', '0-3', '--outdir', out, '--interp', 'w', '--grid', '2x1', '--frames', 3,
                 '--style-mix', '7,8,9', '--mix-steps', '1,2', '--scale', 1)
    assert result.exit_code == 0, result.output
    with PIL.Image.open(out / 'interp-w.gif') as im:
        assert im.n_frames == 2 * 3 and im.size == (2 * RESOLUTION, RESOLUTION)
    for k in (1, 2):
        with PIL.Image.open(out / f'stylemix-k{k:02d}.png') as im:
            assert im.size == (4 * RESOLUTION + 3 * 2, 5 * RESOLUTION + 4 * 2)

@pytest.mark.parametrize('case', ['lstm_delta_split_v2', 'lstm_delta_split_v2_unet'])
def test_reference_checkpoint(tmp_path, case):
    """The FPA authors' checkpoints (converted on the fly by legacy.py) paint like our own files."""
    model_type, layout_kwargs, convert_kwargs = CASES[case]
    assert not convert_kwargs, 'generate.py passes no conversion options'
    checkpoint, _, GE_state = make_checkpoint(reference_layout(model_type, **layout_kwargs))
    path = tmp_path / f'{case}.pt'
    torch.save(checkpoint, path)
    out = tmp_path / 'out'
    result = run('--network', path, '--seeds', '3', '--outdir', out, '--paint', '--paint-wrap', 3, '--paint-animation', '--scale', 1)
    assert result.exit_code == 0, result.output
    # The reference trains against [0, 1] images and shows 255 * clamp(x, 0, 1): our PNG is that picture.
    official = reference_forward(GE_state, latents.seeds_to_z([3], layout_kwargs['z_dim']), **_reference_kwargs(case))[0]
    expected = (255 * official.clamp(0, 1)).permute(1, 2, 0).numpy()
    assert (official < 0).any() and (official > 0).any(), 'the test image should need the clamp'
    assert np.abs(read(out / 'seed0003.png').astype(float) - expected).max() <= 1
    T, N = layout_kwargs['T'], layout_kwargs['N']
    with PIL.Image.open(out / 'paint-seed0003.webp') as im:
        assert im.n_frames == T + ('unet' in case) and im.size == (N, N)
    assert T + ('unet' in case) == 5, 'both cases make 5 columns: two bands of at most 3'
    with PIL.Image.open(out / 'paint-seed0003.png') as im:
        assert im.size == (3 * N + 2 * 2, 2 * (2 * N + 2) + 4 * 2)

#----------------------------------------------------------------------------
# Bad input: one line naming the option, non-zero exit.

@pytest.mark.parametrize('name', ALL[:1])
def test_bad_network_files(tmp_path, name):
    out = tmp_path / 'out'
    assert_fails_with_one_line(run('--network', tmp_path / 'missing.pkl', '--seeds', '0', '--outdir', out), '--network', 'missing.pkl', 'no such file')
    corrupt = tmp_path / 'corrupt.pkl'
    corrupt.write_bytes(b'this is not a network file' * 10)
    assert_fails_with_one_line(run('--network', corrupt, '--seeds', '0', '--outdir', out), '--network', 'corrupt.pkl')
    network = save(tmp_path, name)
    data = torch.load(network, weights_only=True)
    data['G_ema']['class_name'] = 'networks.painters_from_mars.Generator'
    unknown = tmp_path / 'unknown.pkl'
    torch.save(data, unknown)
    assert_fails_with_one_line(run('--network', unknown, '--seeds', '0', '--outdir', out), '--network', 'networks.painters_from_mars.Generator')
    tensor_file = tmp_path / 'tensor.pt'
    torch.save(torch.zeros(3), tensor_file)
    assert_fails_with_one_line(run('--network', tensor_file, '--seeds', '0', '--outdir', out), '--network', 'tensor.pt', 'network file')
    no_generator = tmp_path / 'no-generator.pkl'
    persistence.save_network(str(no_generator), training_set_kwargs=dict(resolution=16))
    assert_fails_with_one_line(run('--network', no_generator, '--seeds', '0', '--outdir', out), '--network', 'no-generator.pkl', 'G_ema')
    assert not out.exists(), 'nothing is written when the network cannot be loaded'

@pytest.mark.skipif(not NON_PAINTERS, reason='no registered generator without G.paint')
def test_paint_needs_a_painter(tmp_path):
    network = save(tmp_path, NON_PAINTERS[0])
    G = build(NON_PAINTERS[0])
    for flag in ('--paint', '--paint-animation', '--paint-channels'):
        result = run('--network', network, '--seeds', '0', '--outdir', tmp_path / 'out', flag)
        assert_fails_with_one_line(result, flag, G.class_name, 'does not paint')

@pytest.mark.parametrize('name', ALL[:1])
def test_bad_options(tmp_path, name):
    network = save(tmp_path, name)
    out = tmp_path / 'out'
    for seeds in ('1-a', '5-3', '', '1,,2'):
        assert_fails_with_one_line(run('--network', network, '--seeds', seeds, '--outdir', out), '--seeds')
    a_file = tmp_path / 'a-file'
    a_file.write_text('x')
    assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', a_file), '--outdir', 'not a directory')
    assert_fails_with_one_line(run('--network', network, '--seeds', '0-2', '--outdir', out, '--interp', 'z', '--grid', '2x1'), '--interp', 'multiple of 2')
    assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', out, '--grid', '2by1'), '--grid', 'WxH')
    num_ws = build(name).num_ws
    assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', out, '--style-mix', '1', '--mix-steps', num_ws + 1), '--mix-steps', f'0..{num_ws}')
    assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', out, '--device', 'toaster'), '--device', 'toaster')
    for psi in ('nan', 'inf', '-inf'):   # nan made all-black images with exit 0.
        assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', out, '--trunc', psi), '--trunc', 'expected a finite number')
    assert not out.exists()
    for unwritable in ('/proc/x', str(a_file / 'sub')):
        assert_fails_with_one_line(run('--network', network, '--seeds', '0', '--outdir', unwritable), f'--outdir={unwritable}', 'cannot write')

#----------------------------------------------------------------------------
# Nothing of the user's replaced, nothing non-finite written, sizes checked before any work.

def test_existing_outputs_are_kept_unless_overwrite(tmp_path):
    network = save(tmp_path, 'fpa')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'seed0001.png').write_text('precious')
    result = run('--network', network, '--seeds', '0-2', '--outdir', out, '--device', 'cpu')
    assert_fails_with_one_line(result, '--outdir', 'seed0001.png', '--overwrite')
    assert (out / 'seed0001.png').read_text() == 'precious' and sorted(os.listdir(out)) == ['seed0001.png'], 'nothing written'
    result = run('--network', network, '--seeds', '0-2', '--outdir', out, '--device', 'cpu', '--overwrite')
    assert result.exit_code == 0, result.output
    assert result.output.count('--overwrite: replacing seed0001.png in') == 1, result.output
    assert read(out / 'seed0001.png').shape[:2] == (RESOLUTION, RESOLUTION)

def test_images_are_written_batch_by_batch(tmp_path, monkeypatch):
    network = save(tmp_path, 'fpa')
    written = []
    def generate_images(G, seeds, **kwargs):   # Each batch must find the earlier batches on disk already.
        written.append((list(seeds), sorted(os.listdir(tmp_path / 'out'))))
        return torch.zeros([len(seeds), G.img_channels, G.img_resolution, G.img_resolution])
    monkeypatch.setattr(api, 'generate_images', generate_images)
    result = run('--network', network, '--seeds', '0-4', '--outdir', tmp_path / 'out', '--batch', 2, '--device', 'cpu')
    assert result.exit_code == 0 and 'Writing 5 images to' in result.output, result.output
    assert written == [([0, 1], []), ([2, 3], ['seed0000.png', 'seed0001.png']), ([4], [f'seed{s:04d}.png' for s in range(4)])]

def test_non_finite_images_are_an_error(tmp_path, monkeypatch):
    network = save(tmp_path, 'fpa')
    monkeypatch.setattr(api, 'generate_images', lambda G, seeds, **kwargs: torch.full([len(seeds), 3, RESOLUTION, RESOLUTION], float('nan')))
    result = run('--network', network, '--seeds', '0-1', '--outdir', tmp_path / 'out', '--device', 'cpu')
    assert_fails_with_one_line(result, '--network', 'the images of seeds 0..1: NaN or infinite values')
    assert os.listdir(tmp_path / 'out') == []

def test_sizes_are_refused_before_any_work(tmp_path):
    network = save(tmp_path, 'fpa')
    out = tmp_path / 'out'
    assert_fails_with_one_line(run('--network', network, '--seeds', '0-1', '--paint', '--scale', 100000, '--outdir', out, '--device', 'cpu'),
                               '--scale', 'the limit is 4096', f'at most {4096 // RESOLUTION}')
    assert_fails_with_one_line(run('--network', network, '--seeds', '0-100000000', '--outdir', out), '--seeds', 'more than 1,000,000 values')
    assert_fails_with_one_line(run('--network', network, '--seeds', str(2 ** 32), '--outdir', out), '--seeds', 'out of range')
    assert not out.exists()

def test_batches_are_bounded_by_the_values_they_hold():
    G = build('fpa')
    per_image = G.img_channels * G.img_resolution ** 2
    assert api.bounded_batch(G, 16) == 16
    assert api.bounded_batch(G, 10 ** 9) == api.MAX_BATCH_ELEMENTS // per_image
    assert api.bounded_batch(G, 10 ** 9, frames=G.num_ws) == api.MAX_BATCH_ELEMENTS // (per_image * G.num_ws)
    G.img_resolution = 2 ** 15      # One sample over the bound still runs, alone.
    assert api.bounded_batch(G, 16) == 1
