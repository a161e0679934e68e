"""painting.api: seeds and latents, image conversion and layout, the painting frames and figures,
animations, interpolation and style mixing, for every registered generator (tiny configs)."""

import copy
import functools

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
import networks
from painting import animation, api, latents, paintings, pictures
from tests.conftest import assert_close
from tests.networks.test_contract import RESOLUTION, _build

ALL = sorted(networks.GENERATORS)
PAINTERS = paintings.painting_generators()

@functools.lru_cache(maxsize=None)
def build(name: str, c_dim: int = 0, img_channels: int = 3) -> torch.nn.Module:
    return _build(name, c_dim=c_dim, img_channels=img_channels).requires_grad_(False)

def assert_uint8_close(actual: np.ndarray, expected: np.ndarray, name: str, max_levels: int = 1) -> None:
    """uint8 pictures equal up to float rounding at the conversion: at most max_levels apart."""
    assert actual.shape == expected.shape, f'{name}: shape {actual.shape} != {expected.shape}'
    diff = np.abs(actual.astype(np.int32) - expected.astype(np.int32))
    assert diff.max() <= max_levels, f'{name}: {int((diff > max_levels).sum())} values differ by up to {diff.max()} levels'

#----------------------------------------------------------------------------
# Seeds, latents, labels.

def test_parse_seeds():
    assert latents.parse_seeds('0,3,5-8') == [0, 3, 5, 6, 7, 8]
    assert latents.parse_seeds('7') == [7]
    assert latents.parse_seeds(' 2 , 4-4 ') == [2, 4]
    for bad in ['', 'a', '1,,2', '5-3', '-1', '1.5', '3-', str(2**32)]:
        with pytest.raises(ValueError):
            latents.parse_seeds(bad)

def test_latents_are_per_seed():
    z = latents.seeds_to_z([9, 4, 123], z_dim=16)
    assert z.dtype == torch.float32 and z.shape == (3, 16)
    assert torch.equal(z[1], latents.seeds_to_z([4], z_dim=16)[0]), 'a latent must not depend on the other seeds'
    assert torch.equal(z[2], torch.from_numpy(np.random.RandomState(123).randn(16)).float()), 'upstream: RandomState(seed).randn(z_dim)'

def test_labels():
    conditional = dnnlib.EasyDict(c_dim=4)
    c = latents.make_labels(conditional, 2, num=3)
    assert torch.equal(c, torch.tensor([[0, 0, 1, 0]] * 3, dtype=torch.float32))
    assert latents.make_labels(dnnlib.EasyDict(c_dim=0), None, num=2).shape == (2, 0)
    for G, class_idx, match in [(conditional, 4, 'out of range'), (conditional, -1, 'out of range'), (conditional, None, 'conditional'),
                                (dnnlib.EasyDict(c_dim=0), 0, 'unconditional')]:
        with pytest.raises(ValueError, match=match):
            latents.make_labels(G, class_idx, num=1)

#----------------------------------------------------------------------------
# Conversion and layout.

def test_to_uint8_matches_upstream_formula():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.999, 1.0, 3.0]).reshape(1, 1, 1, 7)
    assert pictures.to_uint8(x).ravel().tolist() == [0, 0, 64, 128, 255, 255, 255]
    rgb = torch.rand([2, 3, 4, 5]) * 2 - 1
    assert pictures.to_uint8(rgb).shape == (2, 4, 5, 3)

def test_save_image_modes(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    pictures.save_image(grey, str(tmp_path / 'grey.png'))
    pictures.save_image(rgb, str(tmp_path / 'rgb.png'))
    for path, mode, image in [('grey.png', 'L', grey[:, :, 0]), ('rgb.png', 'RGB', rgb)]:
        with PIL.Image.open(tmp_path / path) as im:
            assert im.mode == mode and np.array_equal(np.asarray(im), image)
    with pytest.raises(ValueError, match='1 or 3 channels'):
        pictures.save_image(np.zeros([3, 4, 2], np.uint8), str(tmp_path / 'x.png'))

def test_tile_and_upscale():
    a = np.full([2, 3, 1], 10, np.uint8)
    b = np.full([2, 3, 1], 20, np.uint8)
    grid = pictures.tile([[a, None, b], [b]], gap_px=1, background=255)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1)
    assert (grid[0:2, 0:3] == 10).all() and (grid[0:2, 4:7] == 255).all() and (grid[0:2, 8:11] == 20).all()
    assert (grid[2] == 255).all() and (grid[3:5, 0:3] == 20).all() and (grid[3:5, 4:] == 255).all()
    bands = pictures.tile_bands([[a, b, a], [b, b]], wrap=2, gap_px=1)
    assert bands.shape == (2 * (2 * 2 + 1) + 4, 2 * 3 + 1, 1)
    assert np.array_equal(bands[:5], pictures.tile([[a, b], [b, b]], gap_px=1)) and (bands[5:9] == 255).all()
    assert np.array_equal(bands[9:], pictures.tile([[a, None], [None, None]], gap_px=1)), 'the last band is padded with blanks'
    up = pictures.upscale(np.arange(4, dtype=np.uint8).reshape(2, 2, 1), 3)
    assert up.shape == (6, 6, 1) and up[:3, :3].min() == up[:3, :3].max() == 0 and up[3:, 3:].min() == 3
    assert pictures.auto_scale(16) == 4 and pictures.auto_scale(64) == 1 and pictures.auto_scale(28) == 3

def test_diverging_colors():
    colors = paintings.diverging_colors(np.array([-1.0, 0.0, 1.0, 0.5]))
    assert colors.tolist() == [[0, 0, 255], [255, 255, 255], [255, 0, 0], [255, 128, 128]]

#----------------------------------------------------------------------------
# Generation, for every registered generator.

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('img_channels', [1, 3])
def test_generate_images_independent_of_batch_size(name, img_channels):
    G = build(name, img_channels=img_channels)
    seeds = [5, 0, 17, 2, 9]
    one = api.generate_images(G, seeds, batch_size=1)
    many = api.generate_images(G, seeds, batch_size=3)
    assert one.shape == (5, img_channels, RESOLUTION, RESOLUTION) and one.dtype == torch.float32
    assert_close(many, one, rtol=0, atol=1e-5, name='images with batch 3 vs batch 1')
    assert_uint8_close(pictures.to_uint8(many), pictures.to_uint8(one), 'uint8 images with batch 3 vs batch 1')
    alone = api.generate_images(G, [17])
    assert_close(alone[0], one[2], rtol=0, atol=1e-5, name='seed 17 alone vs among others')
    z = latents.seeds_to_z(seeds, G.z_dim)
    assert_close(one, G(z, None, noise_mode='const'), rtol=0, atol=1e-5, name='generate_images vs G(z)')

@pytest.mark.parametrize('name', ALL)
def test_generate_conditional(name):
    G = build(name, c_dim=3)
    images = [api.generate_images(G, [1, 2], class_idx=k) for k in range(3)]
    assert not torch.allclose(images[0], images[1]), 'the class must change the image'
    with pytest.raises(ValueError, match='out of range'):
        api.generate_images(G, [1], class_idx=3)

@pytest.mark.parametrize('name', ALL)
def test_random_noise_mode_is_seeded_per_sample(name):
    G = build(name)
    a = api.generate_images(G, [3, 4], noise_mode='random')
    b = api.generate_images(G, [4], noise_mode='random', batch_size=1)
    assert torch.equal(a[1], b[0])

#----------------------------------------------------------------------------
# The painting.

@pytest.mark.parametrize('name', PAINTERS)
@pytest.mark.parametrize('img_channels', [1, 3])
def test_painting_frames(name, img_channels):
    G = build(name, img_channels=img_channels)
    seeds = [3, 1, 4]
    painted = paintings.paint_seeds(G, seeds, batch_size=2)
    T, N, C = G.num_ws, RESOLUTION, img_channels
    for key in ('updates', 'partials'):
        assert painted[key].shape == (3, T, N, N, C) and painted[key].dtype == np.uint8, key
    raw = painted.raw
    assert_close(raw.updates.double().cumsum(1), raw.partials.double(), rtol=1e-4, atol=1e-4, name='partials = prefix sums of the updates')
    assert_uint8_close(painted.partials[:, -1], painted.image, 'last partial frame vs the painter output')
    output = painted.image if painted.refined is None else painted.refined
    assert_uint8_close(output, pictures.to_uint8(api.generate_images(G, seeds)), 'painting output vs generated image')
    single = paintings.paint_seeds(G, [1])
    assert_uint8_close(single.partials[0], painted.partials[1], 'painting of seed 1 alone vs in a batch')

@pytest.mark.parametrize('name', PAINTERS)
def test_paint_ws_matches_paint(name):
    """The painting of given codes (projected, style-mixed) is the painting of the latents they came from."""
    G = build(name)
    z, c = latents.seeds_to_z([3, 1, 4], G.z_dim), latents.make_labels(G, None, 3)
    from_latents, from_ws = paintings.paint_latents(G, z, c), paintings.paint_ws(G, G.mapping(z, c), batch_size=2)
    for key in ('updates', 'partials', 'image'):
        assert_uint8_close(from_ws[key], from_latents[key], f'paint_ws {key}')
    assert_close(from_ws.raw.partials, from_latents.raw.partials, rtol=1e-5, atol=1e-5, name='raw partials')

@pytest.mark.skipif(PAINTERS == ALL, reason='every registered generator paints')
def test_paint_ws_needs_a_painter():
    G = build(sorted(set(ALL) - set(PAINTERS))[0])
    with pytest.raises(ValueError, match='cannot paint given codes'):
        paintings.paint_ws(G, G.mapping(latents.seeds_to_z([0], G.z_dim), None))

@pytest.mark.parametrize('name', PAINTERS)
def test_painting_figure_layout(name):
    G = build(name)
    painted = paintings.paint_seeds(G, [7, 8])
    T, N, scale, gap = G.num_ws, RESOLUTION, 2, 1
    cols = T + (painted.refined is not None)
    fig = paintings.painting_figure(painted, 1, scale=scale, gap_px=gap)
    cell = N * scale
    assert fig.shape == (2 * cell + gap, cols * cell + (cols - 1) * gap, 3)
    bottom = lambda j: fig[cell + gap :, j * (cell + gap) : j * (cell + gap) + cell]
    top = lambda j: fig[:cell, j * (cell + gap) : j * (cell + gap) + cell]
    assert np.array_equal(top(0), pictures.upscale(painted.updates[1, 0], scale))
    assert np.array_equal(bottom(T - 1), pictures.upscale(painted.partials[1, -1], scale))
    assert_uint8_close(bottom(T - 1), pictures.upscale(painted.image[1], scale), 'last bottom cell vs output')
    if painted.refined is not None:
        assert np.array_equal(bottom(T), pictures.upscale(painted.refined[1], scale))
        assert (top(T) == 255).all(), 'no update above the refined image'
    assert paintings.painting_figure(painted, 0).shape[0] == 2 * N * pictures.auto_scale(N) + 2
    wrapped = paintings.painting_figure(painted, 1, scale=scale, gap_px=gap, wrap=3)
    num_bands, band_height = -(-cols // 3), 2 * cell + gap
    assert wrapped.shape == (num_bands * band_height + (num_bands - 1) * 4 * gap, 3 * cell + 2 * gap, 3)
    second_band = wrapped[band_height + 4 * gap :]
    assert np.array_equal(second_band[:cell, :cell], pictures.upscale(painted.updates[1, 3], scale)), 'band 2 starts at step 3'
    assert np.array_equal(second_band[cell + gap : 2 * cell + gap, :cell], pictures.upscale(painted.partials[1, 3], scale))

@pytest.mark.parametrize('name', PAINTERS)
def test_channel_figure(name):
    G = build(name)
    painted = paintings.paint_seeds(G, [2])
    T, N, C = G.num_ws, RESOLUTION, 3
    fig = paintings.channel_figure(painted, 0, scale=1, gap_px=1)
    side = N // 8 + 1 + N
    assert fig.shape == (C * side + (C - 1), T * side + (T - 1), 3)
    strip, t, ch = N // 8, 2, 1
    cell = fig[ch * (side + 1) : ch * (side + 1) + side, t * (side + 1) : t * (side + 1) + side]
    update = painted.raw.updates[0, t, ch].double().numpy()
    assert np.array_equal(cell[strip + 1 :, strip + 1 :], paintings.diverging_colors(update / np.abs(update).max())), 'centre: the update'
    written, key = painted.raw.written[0, t, ch].double(), painted.raw.key_vectors[0, t, ch].double()
    assert_close(written.unsqueeze(-1) * key.unsqueeze(-2), painted.raw.updates[0, t, ch].double(), rtol=1e-5, atol=1e-7, name='update = written key^T')
    assert np.array_equal(cell[0, strip + 1 :], paintings.diverging_colors(key.numpy() / key.abs().max().item())), 'top strip: the key'
    assert np.array_equal(cell[strip + 1 :, 0], paintings.diverging_colors(written.numpy() / written.abs().max().item())), 'left strip: the written vector'
    wrapped = paintings.channel_figure(painted, 0, scale=1, gap_px=1, wrap=3)
    num_bands = -(-T // 3)
    assert wrapped.shape == (num_bands * (C * side + C - 1) + (num_bands - 1) * 4, 3 * side + 2, 3)
    assert np.array_equal(wrapped[: C * side + C - 1], fig[:, : 3 * side + 2]), 'band 1 = the first 3 steps'

def test_paint_returns_the_painters_own_factors():
    """G.paint returns what the slow net emitted and what the delta rule wrote: the written
    vector u_t = beta_t (v_t - W_{t-1} k_t) (u_0 = v_0), checked step by step in float64."""
    G = copy.deepcopy(build('fpa')).double()    # build() is cached: not in place.
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    out = G.paint(z, None)
    B, T, C, N = out.written.shape
    W = torch.zeros([B, C, N, N], dtype=torch.float64)
    for t in range(T):
        k, v = out.key_vectors[:, t], out.value_vectors[:, t]
        u = v if t == 0 else out.lrs[:, t] * (v - (W @ k.unsqueeze(-1)).squeeze(-1))
        assert_close(out.written[:, t], u, rtol=0, atol=1e-10, name=f'u_{t}')
        W = W + u.unsqueeze(-1) * k.unsqueeze(-2)
    assert_close(out.partials[:, -1], W, rtol=0, atol=1e-10, name='W')
    assert_close(out.key_vectors.sum(-1), torch.ones([B, T, C], dtype=torch.float64), rtol=0, atol=1e-12, name='softmax keys')

#----------------------------------------------------------------------------
# Animations.

def _frames(num: int, channels: int) -> list[np.ndarray]:
    return [np.full([6, 10, channels], 20 * i, dtype=np.uint8) for i in range(num)]

def _read_animation(path) -> tuple[int, list[int]]:
    with PIL.Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            durations.append(im.info['duration'])
        return im.n_frames, durations

@pytest.mark.parametrize('suffix', ['.gif', '.webp'])
@pytest.mark.parametrize('channels', [1, 3])
def test_save_animation(tmp_path, suffix, channels):
    path = str(tmp_path / f'anim{suffix}')
    animation.save_animation(_frames(5, channels), path, frame_ms=80, hold_ms=1000)
    num_frames, durations = _read_animation(path)
    assert num_frames == 5, 'one stored frame per frame; the hold is a duration, not repeats'
    assert durations == [80, 80, 80, 80, 1080]
    with PIL.Image.open(path) as im:
        assert im.size == (10, 6)
    with pytest.raises(ValueError, match='.gif or .webp'):
        animation.save_animation(_frames(2, 3), str(tmp_path / 'anim.png'))

def test_save_mp4(tmp_path):
    imageio_ffmpeg = pytest.importorskip('imageio_ffmpeg')
    path = str(tmp_path / 'anim.mp4')
    frames = [np.full([7, 9, 3], 30 * i, dtype=np.uint8) for i in range(4)]
    animation.save_mp4(frames, path, frame_ms=100, hold_ms=300)
    num_frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
    assert num_frames == 4 + 3, 'the hold repeats the last frame hold_ms / frame_ms times'

@pytest.mark.parametrize('name', PAINTERS)
@pytest.mark.parametrize('with_updates', [False, True])
def test_painting_animation(tmp_path, name, with_updates):
    G = build(name)
    painted = paintings.paint_seeds(G, [4])
    T, N, scale = G.num_ws, RESOLUTION, 2
    frames = paintings.painting_animation_frames(painted, 0, scale=scale, with_updates=with_updates, gap_px=2)
    extra = painted.refined is not None
    assert len(frames) == T + extra
    width = (2 * N * scale + 2) if with_updates else N * scale
    assert all(frame.shape == (N * scale, width, 3) for frame in frames)
    painted_part = frames[T - 1][:, -N * scale :]
    assert np.array_equal(painted_part, pictures.upscale(painted.partials[0, -1], scale)), 'frame T-1 is the finished painting'
    for suffix in ('.gif', '.webp'):
        path = str(tmp_path / f'paint{suffix}')
        animation.save_animation(frames, path, frame_ms=50, hold_ms=500)
        num_frames, durations = _read_animation(path)
        assert num_frames == T + extra and durations[-1] == 550 and set(durations[:-1]) == {50}

#----------------------------------------------------------------------------
# Interpolation and style mixing.

def test_slerp():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn([4, 32], generator=gen, dtype=torch.float64), torch.randn([4, 32], generator=gen, dtype=torch.float64)
    assert_close(latents.slerp(a, b, 0.0), a, rtol=0, atol=1e-12, name='t=0')
    assert_close(latents.slerp(a, b, 1.0), b, rtol=0, atol=1e-12, name='t=1')
    ua, ub = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    mid = latents.slerp(ua, ub, 0.3)
    assert_close(mid.norm(dim=-1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12, name='stays on the sphere')
    angle = lambda x, y: torch.arccos((x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1)))
    assert_close(angle(ua, mid), 0.3 * angle(ua, ub), rtol=1e-9, atol=1e-9, name='constant angular speed')
    assert_close(latents.slerp(a, 2 * a, 0.5), 1.5 * a, rtol=0, atol=1e-12, name='parallel rows fall back to lerp')

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('space', ['z', 'w'])
def test_interpolation_frames(name, space):
    G = build(name)
    seeds = [0, 1, 2, 3, 4, 5]                                      # 2x1 grid, 3 keyframes.
    frames = animation.interpolation_frames(G, seeds, grid_w=2, grid_h=1, frames_per_transition=3, space=space, batch_size=4)
    assert len(frames) == 3 * 3
    assert all(frame.shape == (RESOLUTION, 2 * RESOLUTION, 3) for frame in frames)
    for k in range(3):
        keyframe = pictures.image_grid(pictures.to_uint8(api.generate_images(G, seeds[2 * k : 2 * k + 2])), num_cols=2)
        assert_uint8_close(frames[3 * k], keyframe, f'frame {3 * k} vs keyframe {k}')
    assert not np.array_equal(frames[1], frames[0]), 'frames between keyframes must move'
    with pytest.raises(ValueError, match='multiple of 2'):
        animation.interpolation_frames(G, [0, 1, 2], grid_w=2)
    with pytest.raises(ValueError, match='at least 2 keyframes'):
        animation.interpolation_frames(G, [0, 1], grid_w=2)

@pytest.mark.parametrize('name', ALL)
def test_style_mixing(name):
    G = build(name)
    rows, cols = [1, 2], [7, 8, 9]
    ends = {k: api.style_mixing_images(G, rows, cols, col_styles=api.styles_after(G, k)) for k in (0, G.num_ws)}
    assert ends[0].mixed.shape == (2, 3, 3, RESOLUTION, RESOLUTION)
    for i in range(2):
        assert_close(ends[0].mixed[i], ends[0].cols, rtol=0, atol=1e-5, name='k=0: the column seeds')
        assert_close(ends[G.num_ws].mixed[:, 0][i], ends[0].rows[i], rtol=0, atol=1e-5, name='k=num_ws: the row seeds')
    assert_close(ends[0].rows, api.generate_images(G, rows), rtol=0, atol=1e-5, name='row images')
    k = G.num_ws // 2
    mixing = api.style_mixing_images(G, rows, cols, col_styles=api.styles_after(G, k))
    ws = G.mapping(latents.seeds_to_z(cols, G.z_dim), None)
    ws[:, :k] = G.mapping(latents.seeds_to_z([2], G.z_dim), None)[:, :k]
    assert_close(mixing.mixed[1], G.synthesis(ws, noise_mode='const'), rtol=0, atol=1e-5, name='cell = first k rows from the row seed')
    grid = api.style_mixing_grid(mixing, scale=2, gap_px=1)
    cell = 2 * RESOLUTION
    assert grid.shape == (3 * cell + 2, 4 * cell + 3, 3)
    assert (grid[:cell, :cell] == 255).all(), 'the corner stays blank'
    with pytest.raises(ValueError, match='expected 0..'):
        api.styles_after(G, G.num_ws + 1)
    with pytest.raises(ValueError, match=f'row {G.num_ws} of ws is out of range: expected 0..{G.num_ws - 1}'):
        api.style_mixing_images(G, rows, cols, col_styles=[0, G.num_ws])
    scattered = api.style_mixing_images(G, rows, cols, col_styles=[0, G.num_ws - 1])     # Any rows, as upstream's --styles.
    ws = G.mapping(latents.seeds_to_z(rows, G.z_dim), None)
    ws[:, [0, G.num_ws - 1]] = G.mapping(latents.seeds_to_z([9], G.z_dim), None)[:, [0, G.num_ws - 1]]
    assert_close(scattered.mixed[:, 2], G.synthesis(ws, noise_mode='const'), rtol=0, atol=1e-5, name='cells of column seed 9')

#----------------------------------------------------------------------------
# GPU (run on the device machine): the same seeds give the same pictures as on the CPU.

@pytest.mark.gpu
@pytest.mark.parametrize('name', ALL)
def test_gpu_matches_cpu(name, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)          # Compare fp32 with fp32, not TF32 convs.
    monkeypatch.setattr(torch.backends.cuda.matmul, 'allow_tf32', False)
    G_cpu = build(name)
    G_gpu = _build(name, c_dim=0, img_channels=3).requires_grad_(False).to('cuda')
    seeds = [0, 1, 2]
    atol = 1e-2 if name == 'stylegan2' else 1e-3 # StyleGAN2 runs its top resolutions in float16 on CUDA (num_fp16_res).
    assert_close(api.generate_images(G_gpu, seeds, batch_size=2), api.generate_images(G_cpu, seeds), rtol=0, atol=atol, name='GPU vs CPU images')
    frames = animation.interpolation_frames(G_gpu, [0, 1], frames_per_transition=2, space='w')
    assert len(frames) == 4
    if name in PAINTERS:
        painted = paintings.paint_seeds(G_gpu, seeds)
        assert_uint8_close(painted.partials, paintings.paint_seeds(G_cpu, seeds).partials, 'GPU vs CPU painting', max_levels=2)
