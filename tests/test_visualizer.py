"""visualizer.py: the server's answers equal the painting API's output; it serves nothing
outside its own page and --networks (path-traversal cases); every bad request is one line with
a status and the server keeps serving; a slow projection leaves other requests alone; and, in
headless Chromium (skipped without it), the pixels the page draws after real clicks and key
presses are the generator's own output for that seed and step."""

import http.client
import io
import json
import os
import struct
import time
import urllib.parse

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import projector
import visualizer
from painting import animation, api, latents, paintings, pictures
from tests import browser
from tests.networks.test_contract import _build
from torch_utils import persistence

#----------------------------------------------------------------------------
# A server on a folder of tiny networks, with a secret file beside it and a symlink to it.

SECRET = b'secret file outside --networks'

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp('viz')
    nets = root / 'nets'
    (nets / 'sub').mkdir(parents=True)
    models = {
        'fpa.pkl': _build('fpa', c_dim=0, img_channels=3),
        'sub/fpa-unet.pkl': _build('fpa-unet', c_dim=0, img_channels=3),
        'fpa-grey-c3.pkl': _build('fpa', c_dim=3, img_channels=1),
        'stylegan2.pkl': _build('stylegan2', c_dim=0, img_channels=3),
    }
    for name, G in models.items():
        persistence.save_network(str(nets / name), G_ema=G)
    (nets / 'refused.pkl').write_bytes(b'\x80\x04not a network at all')
    (nets / 'notes.txt').write_text('not a network file name')
    (root / 'secret.pkl').write_bytes(SECRET)
    os.symlink(root / 'secret.pkl', nets / 'link-out.pkl')
    os.symlink(nets / 'fpa.pkl', nets / 'link-in.pkl')
    log = io.StringIO()
    server = visualizer.make_server(str(nets), port=0, device='cpu', log=log)
    browser.serve_in_thread(server)
    yield dict(server=server, url=server.url, host=server.server_address[0], port=server.server_address[1],
               models={name: G.requires_grad_(False) for name, G in models.items()}, log=log, root=root)
    server.shutdown()
    server.server_close()

def request(site, path: str, method: str = 'GET', body: bytes | None = None, headers: dict = {}) -> tuple[int, bytes]:
    """One raw request (the path is sent exactly as given, never normalised by a client)."""
    conn = http.client.HTTPConnection(site['host'], site['port'], timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        if body is not None and 'Content-Length' not in headers:
            conn.putheader('Content-Length', str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()

def get_json(site, path: str) -> dict:
    status, body = request(site, path)
    assert status == 200, body
    return json.loads(body)

def render(site, **query) -> tuple[dict, dict]:
    """/api/render decoded as the page decodes it: (header, {name: numpy array})."""
    status, body = request(site, '/api/render?' + urllib.parse.urlencode(query))
    assert status == 200, body
    (length,) = struct.unpack('<I', body[:4])
    header = json.loads(body[4:4 + length])
    base = 4 + length
    assert base % 4 == 0
    arrays = {}
    for name, a in header['arrays'].items():
        dtype = np.uint8 if a['dtype'] == 'u8' else np.float32
        count = int(np.prod(a['shape']))
        arrays[name] = np.frombuffer(body, dtype=dtype, count=count, offset=base + a['offset']).reshape(a['shape'])
    return header, arrays

#----------------------------------------------------------------------------
# What is listed and served.

def test_lists_the_network_files_under_networks_only(site):
    names = get_json(site, '/api/networks')['networks']
    assert names == ['fpa-grey-c3.pkl', 'fpa.pkl', 'link-in.pkl', 'refused.pkl', 'stylegan2.pkl', 'sub/fpa-unet.pkl']

def test_info(site):
    info = get_json(site, '/api/info?network=sub/fpa-unet.pkl')
    assert info['paints'] and info['refines'] and info['num_steps'] == 4 and info['img_resolution'] == 16
    info = get_json(site, '/api/info?network=stylegan2.pkl')
    assert not info['paints'] and info['noise_maps'] > 0 and not info['input_transform']

def test_page_is_served_and_self_contained(site):
    status, page = request(site, '/')
    assert status == 200 and b'<canvas' in page
    for name in ('app.js', 'style.css', 'index.html'):
        status, body = request(site, f'/static/{name}')
        assert status == 200 and body
    for name in ('index.html', 'app.js', 'style.css'):
        with open(os.path.join(visualizer.STATIC_DIR, name)) as f:
            text = f.read()
        assert 'http://' not in text and 'https://' not in text, f'{name} must not load anything from the internet'

#----------------------------------------------------------------------------
# The answers equal the painting API's output.

def test_painting_equals_the_api(site):
    G = site['models']['fpa.pkl']
    header, arrays = render(site, network='fpa.pkl', seed=7, psi=0.7)
    expected = paintings.paint_seeds(G, [7], truncation_psi=0.7)
    T = G.num_ws
    assert header['num_steps'] == T and arrays['partials'].shape == (T + 1, 16, 16, 3)
    np.testing.assert_array_equal(arrays['partials'][1:], expected.partials[0])
    np.testing.assert_array_equal(arrays['updates'], expected.updates[0])
    np.testing.assert_array_equal(arrays['image'], expected.image[0])
    zero = pictures.to_uint8(G.display_frames(torch.zeros(1, 1, 3, 16, 16), expected.raw.partials[:, -1])[0])
    np.testing.assert_array_equal(arrays['partials'][0], zero[0])
    np.testing.assert_array_equal(arrays['written'], expected.raw.written[0].numpy())
    np.testing.assert_array_equal(arrays['keys'], expected.raw.key_vectors[0].numpy())
    np.testing.assert_array_equal(arrays['lrs'], expected.raw.lrs[0].numpy())

def test_unet_and_conditional_painters(site):
    G = site['models']['sub/fpa-unet.pkl']
    _, arrays = render(site, network='sub/fpa-unet.pkl', seed=3)
    expected = paintings.paint_seeds(G, [3])
    np.testing.assert_array_equal(arrays['refined'], expected.refined[0])
    np.testing.assert_array_equal(arrays['image'], expected.image[0])
    G = site['models']['fpa-grey-c3.pkl']
    _, arrays = render(site, network='fpa-grey-c3.pkl', seed=5, **{'class': 2})
    np.testing.assert_array_equal(arrays['partials'][1:], paintings.paint_seeds(G, [5], class_idx=2).partials[0])

def test_stylegan2_image_equals_the_api(site):
    G = site['models']['stylegan2.pkl']
    for noise_mode in ('const', 'random', 'none'):
        _, arrays = render(site, network='stylegan2.pkl', seed=11, noise_mode=noise_mode, psi=0.5)
        expected = pictures.to_uint8(api.generate_images(G, [11], noise_mode=noise_mode, truncation_psi=0.5))[0]
        np.testing.assert_array_equal(arrays['image'], expected, err_msg=noise_mode)

@pytest.mark.parametrize('name', ['fpa.pkl', 'stylegan2.pkl'])
def test_mixing_rows_of_ws_equals_style_mixing(site, name):
    """Rows [k, num_ws) from seed B: the painting steps k+1.. of a painter, the layers of StyleGAN2."""
    G = site['models'][name]
    for k in range(1, G.num_ws):
        _, arrays = render(site, network=name, seed=2, seed_b=9, mix_lo=k, mix_hi=G.num_ws)
        expected = pictures.to_uint8(api.style_mixing_images(G, [2], [9], col_styles=api.styles_after(G, k)).mixed[0])[0]
        np.testing.assert_array_equal(arrays['image'], expected, err_msg=f'k={k}')

@pytest.mark.parametrize('space', ['z', 'w'])
def test_latent_walk_goes_from_seed_a_to_seed_b(site, space):
    G = site['models']['stylegan2.pkl']
    images = [render(site, network='stylegan2.pkl', seed=4, seed_b=8, walk=t, space=space)[1]['image'] for t in (0, 0.5, 1)]
    a, b = (pictures.to_uint8(api.generate_images(G, [seed]))[0] for seed in (4, 8))
    np.testing.assert_array_equal(images[0], a)
    assert np.abs(images[2].astype(int) - b).max() <= 1, 'walk=1 must reach seed B (up to float rounding)'
    assert (images[1] != a).any() and (images[1] != b).any()
    frames = animation.interpolation_frames(G, [4, 8], frames_per_transition=2, space=space)
    assert np.abs(images[1].astype(int) - frames[1]).max() <= 1, 'walk=0.5 must be the midpoint of generate.py --interp'

def test_cached_renders_equal_new_ones_and_follow_the_file(site):
    path = site['root'] / 'nets' / 'changing.pkl'
    try:
        persistence.save_network(str(path), G_ema=_build('fpa', c_dim=0, img_channels=3, seed=1))
        query = dict(network='changing.pkl', seed=3, seed_b=4, walk=0.25, mix_lo=2, mix_hi=4)
        first, fresh = render(site, **query)
        second, cached = render(site, **query)
        assert not first['cached'] and second['cached']
        assert fresh.keys() == cached.keys() and all(np.array_equal(fresh[k], cached[k]) for k in fresh)
        other = _build('fpa', c_dim=0, img_channels=3, seed=2)
        persistence.save_network(str(path), G_ema=other)
        os.utime(path, ns=(0, 10**9))                           # A new file state even within the clock's resolution.
        third, changed = render(site, **query)
        assert not third['cached'], 'a changed network file must be rendered again'
        z = latents.seeds_to_z([3, 4], other.z_dim)
        ws = other.mapping(latents.slerp(z[:1], z[1:], 0.25), None)
        ws[:, 2:4] = other.mapping(z[1:], None)[:, 2:4]
        np.testing.assert_array_equal(changed['partials'][1:], paintings.paint_ws(other, ws).partials[0])
    finally:
        path.unlink(missing_ok=True)

def test_animation(site):
    for fmt in ('gif', 'webp'):
        status, body = request(site, f'/api/animation?network=sub/fpa-unet.pkl&seed=1&format={fmt}&scale=2')
        assert status == 200
        with PIL.Image.open(io.BytesIO(body)) as im:
            assert im.format == fmt.upper() and im.n_frames == 4 + 1, 'T steps, then the U-Net output'

class _TransformedSynthesis(torch.nn.Module):
    """A stand-in for StyleGAN3's synthesis: an input layer with a user transform buffer
    (G.synthesis.input.transform); the image shows the transform's translation column."""
    def __init__(self):
        super().__init__()
        self.input = torch.nn.Module()
        self.input.register_buffer('transform', torch.eye(3))

    def forward(self, ws, noise_mode='const'):
        return self.input.transform[:2, 2].reshape(1, 2, 1, 1).repeat(len(ws), 1, 1, 1).clone()

def test_input_transform_is_applied_and_restored():
    G = torch.nn.Module()
    G.synthesis = _TransformedSynthesis()
    G.z_dim = G.w_dim = 4; G.c_dim = 0; G.num_ws = 2; G.img_resolution = 1; G.img_channels = 2
    network = visualizer.Network('sg3', G)
    assert network.info['input_transform'] and not network.paints
    ws = torch.zeros([1, 2, 4])
    assert visualizer.transform_matrix(visualizer.Params('seed=1')) is None
    m = visualizer.transform_matrix(visualizer.Params('tx=0.5&ty=-0.25'))
    img = visualizer.synthesize(network, ws, 'const', 0, m)
    assert torch.allclose(img.flatten(), torch.tensor([-0.5, 0.25])), 'the transform maps output to input: the inverse translation'
    assert torch.equal(G.synthesis.input.transform, torch.eye(3)), 'the shared generator must be left as it was'
    m = visualizer.transform_matrix(visualizer.Params('tx=1&ty=2&angle=90'))
    forward = np.array([[0, -1, 1], [1, 0, 2], [0, 0, 1]])
    assert np.allclose(m @ forward, np.eye(3), atol=1e-12)
    with pytest.raises(visualizer.RequestError, match='angle=1000'):
        visualizer.transform_matrix(visualizer.Params('angle=1000'))

#----------------------------------------------------------------------------
# Safety: nothing outside is served, bad requests get one line, the server goes on.

TRAVERSALS = [
    '/static/../visualizer.py', '/static/%2e%2e/visualizer.py', '/static/%2E%2E%2Fvisualizer.py', '/static/%252e%252e/visualizer.py',
    '/..%2f..%2fsecret.pkl', '/../secret.pkl', '//etc/passwd', '/static//etc/passwd', '/etc/passwd', '/static/..%5c..%5cvisualizer.py',
    '/static/index.html%00.png', '/static/', '/static', '/visualizer.py', '/viz_static/app.js',
    '/api/info?network=../secret.pkl', '/api/info?network=%2e%2e%2fsecret.pkl', '/api/info?network=%252e%252e%252fsecret.pkl',
    '/api/info?network=link-out.pkl', '/api/info?network=sub/../../secret.pkl', '/api/info?network=sub/../fpa.pkl',
    '/api/info?network=.%2Ffpa.pkl', '/api/info?network=fpa.pkl%00', '/api/info?network=notes.txt', '/api/info?network=sub',
    '/api/info?network=..%5csecret.pkl', '/api/render?seed=1&network=/etc/passwd', '/api/render?seed=1&network=%2Fetc%2Fpasswd',
]

def test_path_traversal(site):
    site['root'].joinpath('nets', 'secret-abs-path.txt').write_text('x')
    absolute = urllib.parse.quote(str(site['root'] / 'secret.pkl'))
    for path in TRAVERSALS + [f'/api/info?network={absolute}', f'/api/render?seed=0&network={absolute}']:
        status, body = request(site, path)
        assert status == 404, f'{path}: {status} {body[:80]}'
        assert SECRET not in body and b'Traceback' not in body
        assert len(json.loads(body)['error'].splitlines()) == 1
    assert request(site, '/static/app.js')[0] == 200, 'the server must go on serving'

BAD_REQUESTS = [
    # (path, status, words expected in the one line)
    ('/api/render?network=fpa.pkl', 400, ['seed is missing']),
    ('/api/render?seed=1', 400, ['network is missing']),
    ('/api/render?network=fpa.pkl&seed=-1', 400, ['seed=-1', '0..4294967295']),
    ('/api/render?network=fpa.pkl&seed=4294967296', 400, ['seed=4294967296']),
    ('/api/render?network=fpa.pkl&seed=abc', 400, ['seed=abc']),
    ('/api/render?network=fpa.pkl&seed=1e3', 400, ['seed=1e3']),
    ('/api/render?network=fpa.pkl&seed=--5', 400, ['seed=--5']),
    ('/api/render?network=fpa.pkl&seed=%D9%A3', 400, ['expected an integer']),
    ('/api/render?network=fpa.pkl&seed=' + '9' * 5000, 414, ['query string']),
    ('/api/render?network=fpa.pkl&seed=1&seed=2', 400, ['seed is given twice']),
    ('/api/render?network=fpa.pkl&seed=1&psi=nan', 400, ['psi=nan']),
    ('/api/render?network=fpa.pkl&seed=1&psi=inf', 400, ['psi=inf']),
    ('/api/render?network=fpa.pkl&seed=1&psi=100', 400, ['psi=100']),
    ('/api/render?network=fpa.pkl&seed=1&class=0', 400, ['unconditional']),
    ('/api/render?network=fpa-grey-c3.pkl&seed=1', 400, ['class is missing']),
    ('/api/render?network=fpa-grey-c3.pkl&seed=1&class=3', 400, ['class=3', '0..2']),
    ('/api/render?network=fpa.pkl&seed=1&walk=1.5', 400, ['walk=1.5']),
    ('/api/render?network=fpa.pkl&seed=1&walk=0.5', 400, ['seed_b is missing']),
    ('/api/render?network=fpa.pkl&seed=1&walk=0.5&seed_b=2&space=x', 400, ['space=x', 'z, w']),
    ('/api/render?network=fpa.pkl&seed=1&seed_b=2&mix_lo=3&mix_hi=1', 400, ['mix_lo=3', 'mix_hi=1']),
    ('/api/render?network=fpa.pkl&seed=1&seed_b=2&mix_lo=0&mix_hi=5', 400, ['mix_hi=5', '0..4']),
    ('/api/render?network=stylegan2.pkl&seed=1&noise_mode=loud', 400, ['noise_mode=loud']),
    ('/api/render?network=%ff&seed=1', 400, ['UTF-8']),
    ('/api/info?network=refused.pkl', 400, ['refused.pkl', 'not']),
    ('/api/animation?network=stylegan2.pkl&seed=1', 400, ['does not paint']),
    ('/api/animation?network=fpa.pkl&seed=1&format=bmp', 400, ['format=bmp']),
    ('/api/animation?network=fpa.pkl&seed=1&scale=100', 400, ['scale=100']),
    ('/api/job?id=nope', 404, ['job=nope']),
    ('/api/render?job=nope', 404, ['job=nope']),
    ('/api/nothing', 404, ['not found']),
]

def assert_one_line(status, body, expected_status, words, what):
    assert status == expected_status, f'{what}: {status} {body[:200]}'
    assert b'Traceback' not in body
    message = json.loads(body)['error']
    assert len(message.splitlines()) == 1 and len(message) < 300, f'{what}: {message!r}'
    for word in words:
        assert word in message, f'{what}: "{word}" not in: {message}'

def test_bad_requests_get_one_line_and_the_server_goes_on(site):
    for path, expected_status, words in BAD_REQUESTS:
        status, body = request(site, path)
        assert_one_line(status, body, expected_status, words, path)
        assert request(site, '/api/networks')[0] == 200, f'the server stopped serving after {path}'
    assert_one_line(*request(site, '/api/project?network=fpa.pkl'), 405, ['method not allowed'], 'GET /api/project')
    assert_one_line(*request(site, '/api/render?network=fpa.pkl&seed=1', method='POST', body=b''), 405, ['method not allowed'], 'POST /api/render')
    assert 'Traceback' not in site['log'].getvalue()

def test_an_unexpected_failure_is_one_line_too(site, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError('something broke\nsecond line')
    monkeypatch.setattr(visualizer, 'render', fail)
    assert_one_line(*request(site, '/api/render?network=fpa.pkl&seed=1'), 500, ['internal error: RuntimeError: something broke'], 'failing render')
    monkeypatch.undo()
    assert request(site, '/api/render?network=fpa.pkl&seed=1')[0] == 200
    assert 'Traceback' not in site['log'].getvalue() and 'second line' not in site['log'].getvalue()

def png_bytes(size: tuple[int, int], mode: str = 'RGB', colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new(mode, size, colour if mode == 'RGB' else colour[0]).save(buffer, format='png')
    return buffer.getvalue()

def test_bad_uploads(site):
    image = png_bytes((20, 20))
    cases = [
        ('/api/project?network=fpa.pkl', b'not an image', {}, 400, ['upload: not a readable image']),
        ('/api/project?network=fpa.pkl', png_bytes((4100, 4100), 'L'), {}, 413, ['4100x4100', 'pixels']),
        ('/api/project?network=fpa.pkl', b'', {'Content-Length': str(visualizer.MAX_UPLOAD_BYTES + 1)}, 413, ['bytes']),
        ('/api/project?network=fpa.pkl', None, {}, 411, ['Content-Length']),
        ('/api/project?network=fpa.pkl&num_steps=0', image, {}, 400, ['num_steps=0']),
        ('/api/project?network=fpa.pkl&num_steps=100000', image, {}, 400, ['num_steps=100000']),
        ('/api/project?network=fpa-grey-c3.pkl&class=1', image, {}, 400, ['colour image']),
        ('/api/project?network=../secret.pkl', image, {}, 404, ['no such network']),
    ]
    for path, body, headers, expected_status, words in cases:
        assert_one_line(*request(site, path, method='POST', body=body, headers=headers), expected_status, words, f'{path} ({headers})')
    assert request(site, '/api/networks')[0] == 200

def test_malformed_http_is_refused_in_one_line(site):
    import socket
    for raw, status in ((b'GARBAGE\r\n\r\n', 400), (b'GET /' + b'a' * 70000 + b' HTTP/1.1\r\n\r\n', 414), (b'GET / HTTP/9.9\r\n\r\n', 505)):
        with socket.create_connection((site['host'], site['port']), timeout=10) as sock:
            sock.sendall(raw)
            reply = b''
            while chunk := sock.recv(65536): # The server closes the connection after a refusal.
                reply += chunk
        assert reply.split(b'\r\n')[0].startswith(b'HTTP/1.0 %d ' % status) or reply.split(b'\r\n')[0].startswith(b'HTTP/1.1 %d ' % status), reply[:200]
        assert b'Traceback' not in reply and len(json.loads(reply.split(b'\r\n\r\n', 1)[1])['error'].splitlines()) == 1
    assert request(site, '/api/networks')[0] == 200
    assert 'Traceback' not in site['log'].getvalue()

#----------------------------------------------------------------------------
# Projection jobs, and concurrency.

def start_projection(site, network: str, num_steps: int, seed: int = 0, image: bytes | None = None) -> dict:
    status, body = request(site, f'/api/project?network={network}&num_steps={num_steps}&seed={seed}', method='POST',
                           body=image or png_bytes((40, 30)))
    assert status == 200, body
    return json.loads(body)

def wait_job(site, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        job = get_json(site, f'/api/job?id={job_id}')
        if job['state'] != 'running':
            return job
        time.sleep(0.02)
    raise AssertionError(f'job {job_id} still running after {timeout_s} s')

def test_projection_paints_what_projector_finds(site):
    G = site['models']['fpa.pkl']
    image = png_bytes((40, 30), colour=(10, 200, 90))
    job = wait_job(site, start_projection(site, 'fpa.pkl', num_steps=6, seed=3, image=image)['id'])
    assert job['state'] == 'done' and job['step'] == 6 and job['dist'] > 0, job
    header, arrays = render(site, job=job['id'])
    target_uint8 = projector.load_target(io.BytesIO(image), 16, 3)
    np.testing.assert_array_equal(arrays['target'], target_uint8)
    target = torch.from_numpy(target_uint8.copy()).permute(2, 0, 1).float() / 127.5 - 1
    result = projector.project(G, target, projector.PyramidDistance(), num_steps=6, tied=False, seed=3)
    expected = paintings.paint_ws(G, result.ws[-1:])
    np.testing.assert_array_equal(arrays['partials'][1:], expected.partials[0])
    assert abs(job['dist'] - result.dists[-1]) <= 1e-6 * abs(result.dists[-1])
    status, body = request(site, f'/api/animation?job={job["id"]}&format=gif')
    assert status == 200 and body[:3] == b'GIF'

def test_a_slow_projection_blocks_no_other_request(site):
    job = start_projection(site, 'stylegan2.pkl', num_steps=visualizer.MAX_PROJECTION_STEPS)
    try:
        times = []
        for seed in range(5):
            start = time.perf_counter()
            render(site, network='fpa.pkl', seed=seed)
            times.append(time.perf_counter() - start)
        status = get_json(site, f'/api/job?id={job["id"]}')
        assert status['state'] == 'running', 'the projection must still be running (else this tests nothing)'
        assert max(times) < 5, f'renders beside a projection took {times}'
        assert_one_line(*request(site, f'/api/render?job={job["id"]}'), 409, ['running'], 'render of a running job')
    finally:
        request(site, f'/api/cancel?id={job["id"]}', method='POST', body=b'')
    assert wait_job(site, job['id'])['state'] == 'cancelled'

#----------------------------------------------------------------------------
# The command line.

def test_cli_bad_options(tmp_path):
    result = CliRunner().invoke(visualizer.main, ['--networks', str(tmp_path / 'missing')])
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert result.output.strip().splitlines() == [f'Error: --networks: "{tmp_path / "missing"}" does not exist (expected a network file or a folder of them)']
    result = CliRunner().invoke(visualizer.main, ['--networks', str(tmp_path), '--device', 'tpu'])
    assert result.exit_code != 0 and result.output.strip().splitlines()[-1].startswith('Error: --device:')
    result = CliRunner().invoke(visualizer.main, ['--networks', str(tmp_path), '--host', 'no-such-host.invalid'])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1 and 'Error: --host/--port' in result.output

def test_listens_on_localhost_by_default(tmp_path):
    server = visualizer.make_server(str(tmp_path), port=0)
    try:
        assert server.server_address[0] == '127.0.0.1' and server.url.startswith('http://127.0.0.1:')
    finally:
        server.server_close()

#----------------------------------------------------------------------------
# In the browser: real controls, pixels drawn.

@pytest.fixture(scope='module')
def page(site):
    reason = browser.missing()
    if reason:
        pytest.skip(reason)
    driver = browser.launch()
    try:
        driver.get(site['url'])
        browser.wait_for(driver, 'window.viz && window.viz.renders >= 1 || window.viz.lastError')
        yield driver
    finally:
        driver.quit()

def choose_network(driver, name: str) -> None:
    from selenium.webdriver.support.ui import Select
    renders = driver.execute_script('return window.viz.renders')
    if driver.execute_script('return document.getElementById("network").value') == name:
        return
    Select(driver.find_element('id', 'network')).select_by_value(name)
    try:
        browser.wait_for(driver, f'window.viz.renders > {renders} || window.viz.lastError')
    except Exception:
        print(driver.execute_script('return [window.viz.renders, window.viz.lastError, window.viz.info, document.getElementById("network").value]'))
        print(driver.get_log('browser'))
        raise

def type_seed(driver, element_id: str, seed: int) -> None:
    from selenium.webdriver.common.keys import Keys
    field = driver.find_element('id', element_id)
    field.send_keys(Keys.CONTROL, 'a')
    field.send_keys(str(seed))
    browser.wait_for(driver, f'window.viz.data && window.viz.data.header.{element_id} === {seed} && window.viz.data.ready')

def drawn(driver, canvas_id: str) -> np.ndarray:
    """The canvas's RGB as drawn (alpha must be opaque)."""
    pixels = browser.canvas_pixels(driver, canvas_id)
    assert (pixels[..., 3] == 255).all()
    return pixels[..., :3]

def as_rgb(image: np.ndarray) -> np.ndarray:
    return image.repeat(3, axis=2) if image.shape[2] == 1 else image

def test_browser_painting_pixels(site, page):
    from selenium.webdriver.common.keys import Keys
    choose_network(page, 'fpa.pkl')
    type_seed(page, 'seed', 31)
    G = site['models']['fpa.pkl']
    expected = paintings.paint_seeds(G, [31])
    T = G.num_ws
    np.testing.assert_array_equal(drawn(page, 'image'), expected.partials[0, T - 1])
    slider = page.find_element('id', 'step')
    slider.send_keys(Keys.LEFT)                              # A key press on the real slider: step T-1.
    assert page.execute_script('return window.viz.step') == T - 1
    np.testing.assert_array_equal(drawn(page, 'image'), expected.partials[0, T - 2])
    np.testing.assert_array_equal(drawn(page, 'stroke'), expected.updates[0, T - 2])
    for c in range(3):
        np.testing.assert_array_equal(drawn(page, f'channel-{c}')[..., 0], expected.partials[0, T - 2, :, :, c])
    slider.send_keys(Keys.HOME)                              # Step 0: nothing painted yet.
    assert page.execute_script('return window.viz.step') == 0
    zero = pictures.to_uint8(G.display_frames(torch.zeros(1, 1, 3, 16, 16), expected.raw.partials[:, -1])[0])[0]
    np.testing.assert_array_equal(drawn(page, 'image'), zero)
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(page).click_and_hold(slider).move_by_offset(slider.size['width'] // 2, 0).release().perform()  # Dragged to the right end.
    assert page.execute_script('return window.viz.step') == T
    np.testing.assert_array_equal(drawn(page, 'image'), expected.partials[0, T - 1])
    page.find_element('id', 'play').click()                  # Play from step 0 to T, then stop.
    browser.wait_for(page, 'window.viz.step === 0 || document.getElementById("play").textContent === "Pause"')
    browser.wait_for(page, f'window.viz.step === {T} && document.getElementById("play").textContent === "Play"', timeout_s=10)
    np.testing.assert_array_equal(drawn(page, 'image'), expected.partials[0, T - 1])
    stats = page.execute_script('return window.viz.stats')
    assert len(stats['step']) >= 3 and all(0 <= ms < 1000 for ms in stats['step'])
    assert stats['seedFirstFrame'] and stats['seedAllFrames']

def test_browser_step_mixing_and_grey_classes(site, page):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    choose_network(page, 'fpa-grey-c3.pkl')
    Select(page.find_element('id', 'class')).select_by_value('2')
    type_seed(page, 'seed', 12)
    type_seed(page, 'seed_b', 13)
    G = site['models']['fpa-grey-c3.pkl']
    renders = page.execute_script('return window.viz.renders')
    page.find_element('id', 'mix_k').send_keys(Keys.LEFT)    # k = T - 1: the last step from seed B.
    browser.wait_for(page, f'window.viz.renders > {renders} && window.viz.data.header.mix_lo === {G.num_ws - 1}')
    expected = pictures.to_uint8(api.style_mixing_images(G, [12], [13], col_styles=api.styles_after(G, G.num_ws - 1), class_idx=2).mixed[0])[0]
    np.testing.assert_array_equal(drawn(page, 'image'), as_rgb(expected))

def test_browser_stylegan2_and_refused_file(site, page):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    choose_network(page, 'stylegan2.pkl')
    assert not page.find_element('id', 'painter').is_displayed()
    type_seed(page, 'seed', 5)
    G = site['models']['stylegan2.pkl']
    np.testing.assert_array_equal(drawn(page, 'image'), pictures.to_uint8(api.generate_images(G, [5]))[0])
    type_seed(page, 'seed_b', 6)
    renders = page.execute_script('return window.viz.renders')
    page.find_element('id', 'mix_hi').send_keys(Keys.END)     # Layers 0..num_ws from seed B: seed B's image.
    browser.wait_for(page, f'window.viz.renders > {renders} && window.viz.data.header.mix_hi === {G.num_ws}')
    np.testing.assert_array_equal(drawn(page, 'image'), pictures.to_uint8(api.generate_images(G, [6]))[0])
    Select(page.find_element('id', 'network')).select_by_value('refused.pkl')
    message = browser.wait_for(page, 'window.viz.lastError')
    assert message.startswith('network=refused.pkl:') and '\n' not in message
    assert page.find_element('id', 'error').text == message

#----------------------------------------------------------------------------

def test_browser_unet_and_projection(site, page, tmp_path):
    from selenium.webdriver.common.keys import Keys
    choose_network(page, 'sub/fpa-unet.pkl')
    type_seed(page, 'seed', 4)
    G = site['models']['sub/fpa-unet.pkl']
    expected = paintings.paint_seeds(G, [4])
    np.testing.assert_array_equal(drawn(page, 'before-unet'), expected.image[0])
    np.testing.assert_array_equal(drawn(page, 'after-unet'), expected.refined[0])
    image = tmp_path / 'target.png'
    image.write_bytes(png_bytes((24, 20), colour=(30, 60, 220)))
    page.find_element('id', 'upload').send_keys(str(image))
    steps = page.find_element('id', 'proj_steps')
    steps.send_keys(Keys.CONTROL, 'a')
    steps.send_keys('4')
    page.find_element('id', 'project').click()
    browser.wait_for(page, 'window.viz.job && window.viz.data.header.job === window.viz.job', timeout_s=60)
    assert page.find_element('id', 'proj-status').text.startswith('done: step 4 / 4, distance ')
    target_uint8 = projector.load_target(str(image), 16, 3)
    target = torch.from_numpy(target_uint8.copy()).permute(2, 0, 1).float() / 127.5 - 1
    result = projector.project(G, target, projector.PyramidDistance(), num_steps=4, tied=False, seed=4)
    painted = paintings.paint_ws(G, result.ws[-1:])
    assert page.execute_script('return window.viz.step') == G.num_ws
    np.testing.assert_array_equal(drawn(page, 'image'), painted.partials[0, -1])
    np.testing.assert_array_equal(drawn(page, 'after-unet'), painted.refined[0])
    np.testing.assert_array_equal(drawn(page, 'target'), target_uint8)
    assert len(page.execute_script('return window.viz.stats.projectionStart')) == 1
