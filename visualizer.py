"""Watch a network paint, live, in a browser: a local web server and a page of plain JavaScript.

    python visualizer.py --networks=DIR_OR_FILE [--port=8000] [--host=127.0.0.1] [--device=auto] [--threads=1]

The server renders on the device it runs on (CPU or GPU) and listens on 127.0.0.1 unless
--host names another interface, so on a headless GPU node it is reached through an SSH port
forward (ssh -L 8000:localhost:8000 node). The page (viz_static/) needs no internet.

What it serves, and nothing else (docs/visualizer.md):
    /, /static/NAME                 the page: the files of viz_static/, looked up by name in a
                                    table made at start-up (no path from a request is ever joined)
    /api/networks                   the network files under --networks (a listed name is the only
                                    way to name a network; symlinks leading outside are not listed)
    /api/info?network=              the generator's shape and capabilities
    /api/render?network=&seed=...   one sample; for a painting generator (G.paint) all T steps of
                                    its painting in one binary response (the page scrubs them)
    /api/animation?...&format=gif   the painting as an animated GIF or WebP
    POST /api/project?network=&num_steps=   an uploaded image -> a projection job id
    /api/job?id=                    the job's progress (step, distance); /api/render?job= its result

Networks are read only through networks.load_network (no code from a file runs). Every bad
request is answered with a status (400, 404, 405, 411, 413) and one line of JSON
{"error": "..."}; the server logs one line and keeps serving.
"""

import copy
import http.server
import io
import json
import math
import os
import re
import secrets
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
import projector
from painting import animation, api, latents, paintings, pictures
from torch_utils import misc

#----------------------------------------------------------------------------
# Limits on what a request may ask for (each checked before any work is done).

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'viz_static')
STATIC_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
                '.png': 'image/png', '.svg': 'image/svg+xml'}
NETWORK_SUFFIXES = ('.pkl', '.pt', '.pth')   # What the loader reads: network pickles and torch checkpoints.
MAX_NETWORK_FILES = 1000                    # Files listed under --networks (the first ones, sorted).
MAX_NETWORK_DEPTH = 4                       # Folder levels searched under --networks.
MAX_CACHED_NETWORKS = 4                     # Generators kept loaded (least recently used dropped).
MAX_CACHED_RENDER_BYTES = 256 << 20         # Recent renders kept (revisited seeds, walk and mixing positions).
MAX_PSI = 4.0                               # |truncation psi|.
MAX_TRANSFORM = 10.0                        # |translation| of StyleGAN3's input transform, in input-grid units.
MAX_UPLOAD_BYTES = 16 << 20                 # An uploaded target image.
MAX_UPLOAD_PIXELS = 4096 * 4096             # Its decoded size.
MAX_PROJECTION_STEPS = 1000                 # Optimisation steps of one projection job.
MAX_RUNNING_JOBS = 2                        # Projections running at once (each keeps a core busy).
MAX_KEPT_JOBS = 16                          # Finished jobs kept for their results (oldest dropped).
MAX_ANIMATION_SCALE = 8                     # Enlargement of an animation's frames.
MAX_QUERY_CHARS = 4096                      # The query string of one request.

class RequestError(Exception):
    """A request the server refuses: HTTP status and one line for the user."""
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

def bad(message: str) -> RequestError:
    return RequestError(400, message)

#----------------------------------------------------------------------------
# Query parameters: each read once, checked against its range, named in the error.

class Params:
    def __init__(self, query: str):
        if len(query) > MAX_QUERY_CHARS:
            raise RequestError(414, f'query string of {len(query)} characters: at most {MAX_QUERY_CHARS}')
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors='strict')
        except (ValueError, UnicodeDecodeError):
            raise bad('the query string is not valid UTF-8 URL encoding') from None
        self.values = {}
        for key, value in pairs:
            if key in self.values:
                raise bad(f'{key} is given twice')
            self.values[key] = value

    def has(self, name: str) -> bool:
        return self.values.get(name, '') != ''

    def text(self, name: str, default: str | None = None) -> str:
        value = self.values.get(name, '')
        if value == '':
            if default is None:
                raise bad(f'{name} is missing')
            return default
        return value

    def integer(self, name: str, lo: int, hi: int, default: int | None = None) -> int:
        text = self.text(name, None if default is None else str(default))
        if not re.fullmatch(r'-?[0-9]{1,20}', text) or not lo <= int(text) <= hi:
            raise bad(f'{name}={text[:40]}: expected an integer in {lo}..{hi}')
        return int(text)

    def number(self, name: str, lo: float, hi: float, default: float | None = None) -> float:
        text = self.text(name, None if default is None else repr(default))
        try:
            value = float(text) if len(text) <= 40 else math.nan
        except ValueError:
            value = math.nan
        if not lo <= value <= hi: # Also refuses nan and inf.
            raise bad(f'{name}={text[:40]}: expected a number in [{lo:g}, {hi:g}]')
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise bad(f'{name}={value[:40]}: expected one of {", ".join(choices)}')
        return value

#----------------------------------------------------------------------------
# The networks under --networks, loaded on demand and kept loaded.

def input_transform(G: torch.nn.Module) -> torch.Tensor | None:
    """StyleGAN3's user transform of the synthesis input (G.synthesis.input.transform, a 3x3
    matrix buffer), or None for generators without one."""
    transform = getattr(getattr(G.synthesis, 'input', None), 'transform', None)
    return transform if isinstance(transform, torch.Tensor) and tuple(transform.shape) == (3, 3) else None

class Network:
    """A loaded generator, what the page needs to know about it, and a lock for the renders
    that change its state (the input transform). `key` names the file's state (real path,
    modification time, size)."""
    def __init__(self, name: str, G: torch.nn.Module, key: tuple = ()):
        self.name = name
        self.key = key
        self.G = G
        self.lock = threading.Lock()
        self.paints = paintings.paints(G) and callable(getattr(G, 'synthesis_paint', None))
        refined = self.paints and getattr(G.synthesis, 'unet', None) is not None
        self.info = dict(
            network=name, class_name=api.generator_name(G), paints=self.paints, refines=refined,
            z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws, img_resolution=G.img_resolution,
            img_channels=G.img_channels, num_steps=G.num_ws if self.paints else 0,
            noise_maps=len(latents.noise_buffers(G)), input_transform=input_transform(G) is not None,
        )

class NetworkLibrary:
    """The files under --networks (a folder, searched MAX_NETWORK_DEPTH levels deep, or one file).
    A network is named by its path relative to the folder, exactly as listed: a name that is not
    in the listing is unknown, so no request can reach a file outside (.., absolute paths,
    encoded variants and symlinks leading out are simply not names of listed files)."""
    def __init__(self, root: str, device: torch.device):
        self.root = os.path.realpath(root)
        self.device = device
        self.cache: dict[tuple, Network] = {}
        self.lock = threading.Lock()
        self.loading: dict[str, threading.Lock] = {}

    def listing(self) -> dict[str, str]:
        """{name: real path} of the network files, sorted by name, at most MAX_NETWORK_FILES."""
        if os.path.isfile(self.root):
            return {os.path.basename(self.root): self.root}
        found = {}
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            rel_folder = os.path.relpath(folder, self.root)
            depth = 0 if rel_folder == '.' else rel_folder.count(os.sep) + 1
            dirs[:] = sorted(d for d in dirs if not d.startswith('.')) if depth < MAX_NETWORK_DEPTH else []
            for file in sorted(files):
                if file.startswith('.') or not file.lower().endswith(NETWORK_SUFFIXES):
                    continue
                path = os.path.join(folder, file)
                real = os.path.realpath(path)
                if os.path.commonpath([real, self.root]) != self.root or not os.path.isfile(real):
                    continue # A symlink leading outside --networks (or nowhere).
                found[os.path.relpath(path, self.root).replace(os.sep, '/')] = real
        return dict(sorted(found.items())[:MAX_NETWORK_FILES])

    def get(self, name: str) -> Network:
        real = self.listing().get(name)
        if real is None:
            raise RequestError(404, f'network={name[:80]}: no such network file under --networks')
        try:
            stat = os.stat(real)
        except OSError as err:
            raise RequestError(404, f'network={name}: {err.strerror}') from None
        key = (real, stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if key in self.cache:
                self.cache[key] = self.cache.pop(key) # Most recently used last.
                return self.cache[key]
            load_lock = self.loading.setdefault(real, threading.Lock())
        with load_lock: # One load per file at a time; another tab waits for it rather than loading it again.
            with self.lock:
                if key in self.cache:
                    return self.cache[key]
            try:
                G = api.load_generator(real, device=self.device)
            except ValueError as err:
                message = str(err).replace(real, name)
                raise bad(f'network={name}: {message[len(name) + 2:] if message.startswith(name + ": ") else message}') from None
            network = Network(name, G, key)
            with self.lock:
                for old in [k for k in self.cache if k[0] == real]:
                    del self.cache[old]
                self.cache[key] = network
                while len(self.cache) > MAX_CACHED_NETWORKS:
                    del self.cache[next(iter(self.cache))]
            return network

#----------------------------------------------------------------------------
# Rendering: the codes of a request (seed, walk to a second seed, mixing rows of ws from it),
# then the painting (painters) or the image (every generator).

def request_ws(network: Network, params: Params) -> tuple[torch.Tensor, dict]:
    """ws [1, num_ws, w_dim] of the request and the options that shaped it.
        seed, psi, class        the sample (as generate.py --seeds --trunc --class),
        seed_b, walk, space     the latent walk: fraction `walk` of the way to seed_b, slerp in z or lerp in w,
        mix_lo, mix_hi          rows [mix_lo, mix_hi) of ws from seed_b (painters: steps; StyleGAN: layers)."""
    G = network.G
    seed = params.integer('seed', 0, latents.MAX_SEED)
    psi = params.number('psi', -MAX_PSI, MAX_PSI, 1.0)
    class_idx = params.integer('class', 0, max(G.c_dim - 1, 0)) if G.c_dim > 0 else None
    if G.c_dim == 0 and params.has('class'):
        raise bad(f'class={params.text("class")[:20]}: the network is unconditional (c_dim=0)')
    walk = params.number('walk', 0.0, 1.0, 0.0)
    space = params.choice('space', ('z', 'w'), 'z')
    mix_lo = params.integer('mix_lo', 0, G.num_ws, 0)
    mix_hi = params.integer('mix_hi', 0, G.num_ws, 0)
    if mix_hi < mix_lo:
        raise bad(f'mix_lo={mix_lo}, mix_hi={mix_hi}: expected mix_lo <= mix_hi')
    needs_b = walk > 0 or mix_hi > mix_lo
    seed_b = params.integer('seed_b', 0, latents.MAX_SEED, None if needs_b else 0)
    device = misc.device_of(G)
    c = latents.make_labels(G, class_idx, 1, device)
    z = latents.seeds_to_z([seed, seed_b], G.z_dim, device)
    mapping = lambda z: G.mapping(z, c, truncation_psi=psi)
    with torch.no_grad():
        if walk == 0:
            ws = mapping(z[:1])
        elif space == 'z':
            ws = mapping(latents.slerp(z[:1], z[1:], walk))
        else:
            ws = torch.lerp(mapping(z[:1]), mapping(z[1:]), walk)
        if mix_hi > mix_lo:
            ws[:, mix_lo:mix_hi] = mapping(z[1:])[:, mix_lo:mix_hi]
    return ws, dict(seed=seed, psi=psi, class_idx=class_idx, seed_b=seed_b, walk=walk, space=space, mix_lo=mix_lo, mix_hi=mix_hi)

class RenderCache:
    """The answers of recent renders (header, arrays) by the file's state and the request's
    options, least recently used dropped beyond MAX_CACHED_RENDER_BYTES: moving the walk or
    mixing slider back, or returning to a seed, answers without computing again. A render is
    a pure function of these (noise_mode='random' is seeded by the seed), so an answer from
    the cache is the answer a new render would give (tested)."""
    def __init__(self, max_bytes: int = MAX_CACHED_RENDER_BYTES):
        self.max_bytes = max_bytes
        self.entries: dict[tuple, tuple[dict, dict]] = {}
        self.num_bytes = 0
        self.lock = threading.Lock()

    def get(self, key: tuple) -> tuple[dict, dict] | None:
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is not None:
                self.entries[key] = entry # Most recently used last.
            return entry

    def put(self, key: tuple, header: dict, arrays: dict[str, np.ndarray]) -> None:
        size = sum(array.nbytes for array in arrays.values())
        with self.lock:
            if key in self.entries or size > self.max_bytes:
                return
            self.entries[key] = (header, arrays)
            self.num_bytes += size
            while self.num_bytes > self.max_bytes:
                _, old_arrays = self.entries.pop(next(iter(self.entries)))
                self.num_bytes -= sum(array.nbytes for array in old_arrays.values())

def transform_matrix(params: Params) -> np.ndarray | None:
    """StyleGAN3's input transform from tx, ty (translation) and angle (degrees): the inverse of
    the rotation-then-translation the user asks for, as the transform maps output to input."""
    if not any(params.has(name) for name in ('tx', 'ty', 'angle')):
        return None
    tx, ty = params.number('tx', -MAX_TRANSFORM, MAX_TRANSFORM, 0.0), params.number('ty', -MAX_TRANSFORM, MAX_TRANSFORM, 0.0)
    angle = params.number('angle', -360.0, 360.0, 0.0) * math.pi / 180
    m = np.array([[math.cos(angle), -math.sin(angle), tx], [math.sin(angle), math.cos(angle), ty], [0, 0, 1]])
    return np.linalg.inv(m)

@torch.no_grad()
def synthesize(network: Network, ws: torch.Tensor, noise_mode: str, noise_seed: int, transform: np.ndarray | None) -> torch.Tensor:
    """G.synthesis(ws) float32 [1, C, N, N] on the CPU; noise_mode='random' draws its noise from
    torch's generator seeded with the sample's seed, as painting.api.generate_images does."""
    G = network.G
    device = misc.device_of(G)
    def run():
        with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
            torch.manual_seed(noise_seed)
            return G.synthesis(ws, noise_mode=noise_mode).float().cpu()
    buffer = input_transform(G)
    if transform is None or buffer is None:
        return run()
    with network.lock: # The transform is the generator's state: one render at a time changes it.
        saved = buffer.clone()
        buffer.copy_(torch.from_numpy(transform).to(buffer))
        try:
            return run()
        finally:
            buffer.copy_(saved)

def encode_arrays(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The binary the page decodes: uint32 (little-endian) length of a JSON header, the header,
    then each array's bytes at a 4-byte aligned offset (uint8 or float32, C order); the header
    lists arrays[name] = {offset, dtype, shape}."""
    table, blobs, offset = {}, [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        assert array.dtype in (np.uint8, np.float32), f'{name}: {array.dtype}'
        table[name] = dict(offset=offset, dtype='u8' if array.dtype == np.uint8 else 'f32', shape=list(array.shape))
        data = array.tobytes()
        blobs.append(data + b'\0' * (-len(data) % 4))
        offset += len(blobs[-1])
    head = json.dumps(dict(header, arrays=table)).encode()
    head += b' ' * (-(len(head) + 4) % 4)
    return struct.pack('<I', len(head)) + head + b''.join(blobs)

def painting_arrays(network: Network, painted: dnnlib.EasyDict) -> dict[str, np.ndarray]:
    """One painting (batch of 1) as the page shows it: partials [T+1, N, N, C] uint8 with frame 0
    the empty matrix W_0 = 0 (displayed as the output range shows zero), updates [T, N, N, C]
    uint8, the FPA's image and the U-Net's, and the written vectors, keys and learning rates of
    every step as float32."""
    G, raw = network.G, painted.raw
    empty = G.display_frames(torch.zeros_like(raw.partials[:, :1]), raw.partials[:, -1]).cpu()
    B, _, C, N, _ = raw.partials.shape
    arrays = dict(
        partials = np.concatenate([pictures.to_uint8(empty.flatten(0, 1)).reshape(B, 1, N, N, C), painted.partials], axis=1)[0],
        updates  = painted.updates[0],
        image    = painted.image[0],
        written  = raw.written[0].numpy(),       # [T, C, N]
        keys     = raw.key_vectors[0].numpy(),   # [T, C, N]
    )
    if raw.get('lrs') is not None:
        arrays['lrs'] = raw.lrs[0].numpy()       # [T, C, r]
    if painted.refined is not None:
        arrays['refined'] = painted.refined[0]
    return {name: array.astype(np.float32) if array.dtype != np.uint8 else array for name, array in arrays.items()}

def render(network: Network, ws: torch.Tensor, noise_mode: str, noise_seed: int, transform: np.ndarray | None) -> dict[str, np.ndarray]:
    """Painters: painting_arrays of ws; other generators: the image [N, N, C] uint8."""
    if network.paints:
        return painting_arrays(network, paintings.paint_ws(network.G, ws))
    return dict(image=pictures.to_uint8(synthesize(network, ws, noise_mode, noise_seed, transform))[0])

#----------------------------------------------------------------------------
# Projection jobs: projector.project in a thread of its own, its progress polled by the page.

class Cancelled(Exception):
    pass

class ProjectionJob:
    def __init__(self, network: Network, target: np.ndarray, num_steps: int, seed: int, class_idx: int | None):
        self.id = secrets.token_hex(8)
        self.network = network
        self.target = target
        self.num_steps = num_steps
        self.seed = seed
        self.class_idx = class_idx
        self.state = 'running'
        self.step = 0
        self.dist = None
        self.error = None
        self.result = None          # render() of the projected codes, once done.
        self.cancelled = False
        self.start_time = time.time()
        self.thread = threading.Thread(target=self._run, name=f'projection-{self.id}', daemon=True)

    def _report(self, step: int, num_steps: int, dist: float, loss: float) -> None:
        _ = num_steps, loss
        self.step, self.dist = step, dist
        if self.cancelled:
            raise Cancelled()

    def _run(self) -> None:
        G = self.network.G
        try:
            device = misc.device_of(G)
            target = projector.target_tensor(self.target, device)
            c = latents.make_labels(G, self.class_idx, 1, device)
            result = projector.project(G, target, projector.make_distance(None, device), c=c, num_steps=self.num_steps,
                                       tied=not self.network.paints, seed=self.seed, report=self._report)
            ws = result.ws[-1:].to(device)
            if self.network.paints:
                self.result = painting_arrays(self.network, paintings.paint_ws(G, ws))
            else:
                G_noise = copy.deepcopy(G) # The projection's noise maps, without touching the shared generator.
                latents.set_noise_buffers(G_noise, result.noise)
                self.result = dict(image=projector.synthesize(G_noise, ws)[0])
            self.result['target'] = self.target
            self.state = 'done'
        except Cancelled:
            self.state = 'cancelled'
        except Exception as err: # pylint: disable=broad-except
            self.error = f'projection failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}'
            self.state = 'failed'

    def status(self) -> dict:
        return dict(id=self.id, state=self.state, step=self.step, num_steps=self.num_steps, dist=self.dist, error=self.error,
                    network=self.network.name, elapsed_s=round(time.time() - self.start_time, 3))

class JobTable:
    def __init__(self):
        self.jobs: dict[str, ProjectionJob] = {}
        self.lock = threading.Lock()

    def start(self, job: ProjectionJob) -> None:
        with self.lock:
            running = sum(j.state == 'running' for j in self.jobs.values())
            if running >= MAX_RUNNING_JOBS:
                raise RequestError(429, f'{running} projections are running: at most {MAX_RUNNING_JOBS} at once; wait for one to finish')
            for old in [k for k, j in self.jobs.items() if j.state != 'running'][:max(0, len(self.jobs) + 1 - MAX_KEPT_JOBS)]:
                del self.jobs[old]
            self.jobs[job.id] = job
        job.thread.start()

    def get(self, job_id: str) -> ProjectionJob:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise RequestError(404, f'job={job_id[:40]}: no such projection job')
        return job

#----------------------------------------------------------------------------
# The uploaded target image.

def read_target(data: bytes, img_resolution: int, img_channels: int) -> np.ndarray:
    """uint8 [N, N, C] from an uploaded image file, prepared as projector.py prepares --target;
    the decoded size is checked before the pixels are decoded."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as err:
        raise bad(f'upload: not a readable image ({str(err).splitlines()[0] if str(err) else type(err).__name__})') from None
    if w * h > MAX_UPLOAD_PIXELS or w < 1 or h < 1:
        raise RequestError(413, f'upload: image of {w}x{h} pixels: at most {MAX_UPLOAD_PIXELS} pixels')
    try:
        return projector.load_target(io.BytesIO(data), img_resolution, img_channels)
    except ValueError as err:
        message = str(err)
        message = message[message.index('" ') + 2:] if message.startswith('"<') and '" ' in message else message
        raise bad(f'upload: {message}') from None

#----------------------------------------------------------------------------
# The HTTP server.

def static_files() -> dict[str, str]:
    """{url path: file} of the page: the plain files directly in viz_static/, made once."""
    files = {}
    for name in sorted(os.listdir(STATIC_DIR)):
        path = os.path.join(STATIC_DIR, name)
        if os.path.isfile(path) and not os.path.islink(path) and os.path.splitext(name)[1] in STATIC_TYPES:
            files[f'/static/{name}'] = path
    files['/'] = files['/static/index.html']
    return files

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True           # A request thread never keeps the process alive.
    request_queue_size = 32

    def __init__(self, address, networks_root: str, device: torch.device, log=sys.stderr):
        self.library = NetworkLibrary(networks_root, device)
        self.jobs = JobTable()
        self.renders = RenderCache()
        self.static = static_files()
        self.log = log
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        """A failure outside the request handler (e.g. the client went away): one line, no traceback."""
        err = sys.exc_info()[1]
        self.log_line(f'{client_address[0]}: connection error: {type(err).__name__}: {err}')

    def log_line(self, line: str) -> None:
        try:
            print(line, file=self.log, flush=True)
        except (OSError, ValueError):
            pass

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f'[{host}]' if ':' in host else host
        return f'http://{host}:{port}/'

class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    server_version = 'fpa-visualizer'
    protocol_version = 'HTTP/1.1'
    timeout = 60                    # Seconds a connection may stay idle (or a client take to send a request).

    # Routes: path -> handler method name (GET), and the POST ones.
    GET_ROUTES = {'/api/networks': 'api_networks', '/api/info': 'api_info', '/api/render': 'api_render',
                  '/api/animation': 'api_animation', '/api/job': 'api_job'}
    POST_ROUTES = {'/api/project': 'api_project', '/api/cancel': 'api_cancel'}

    def version_string(self):
        return self.server_version     # No Python version in the Server header.

    def log_message(self, format, *args): # pylint: disable=redefined-builtin
        """http.server's own messages (malformed requests, timeouts): one line each."""
        self.server.log_line(f'{self.address_string()}: {format % args}')

    def log_request(self, code='-', size='-'):
        pass # Successful requests are not logged; refusals are (respond_error).

    # Responses.

    def respond(self, status: int, body: bytes, content_type: str, extra_headers: dict = {}) -> None:
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.send_header('X-Content-Type-Options', 'nosniff')
        for key, value in extra_headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def respond_json(self, obj, status: int = 200) -> None:
        self.respond(status, json.dumps(obj).encode(), 'application/json')

    def respond_error(self, status: int, message: str) -> None:
        message = ' '.join(str(message).split())
        self.server.log_line(f'{self.address_string()}: {self.command} {self.path[:120]} -> {status}: {message}')
        self.respond_json(dict(error=message), status)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (malformed request line, headers too long) as our one-line JSON."""
        self.close_connection = True
        self.command = self.command or 'GET'            # Unset when the request line could not be parsed.
        self.path = getattr(self, 'path', '')
        if self.request_version == 'HTTP/0.9':          # Which would mean no status line: answer as HTTP/1.0.
            self.request_version = 'HTTP/1.0'
        try:
            self.respond_error(code, message or http.HTTPStatus(code).phrase)
        except OSError:
            pass

    # Dispatch.

    def handle_route(self, routes: dict) -> None:
        try:
            url = urllib.parse.urlsplit(self.path)
            if url.path in routes:
                getattr(self, routes[url.path])(Params(url.query))
            elif self.command in ('GET', 'HEAD') and url.path in self.server.static:
                self.serve_static(url.path)
            elif url.path in self.GET_ROUTES or url.path in self.POST_ROUTES:
                raise RequestError(405, f'{self.command} {url.path}: method not allowed')
            else:
                raise RequestError(404, f'{url.path[:120]}: not found')
        except RequestError as err:
            self.respond_error(err.status, str(err))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err: # pylint: disable=broad-except
            # Not the user's mistake: still one line in the page and in the log, and the server goes on.
            self.respond_error(500, f'internal error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}')

    def do_GET(self):
        self.handle_route(self.GET_ROUTES)

    def do_HEAD(self):
        self.handle_route(self.GET_ROUTES)

    def do_POST(self):
        self.close_connection = True # A body left unread (a refused request) must not be taken for the next request.
        self.handle_route(self.POST_ROUTES)

    def serve_static(self, path: str) -> None:
        file = self.server.static[path]
        with open(file, 'rb') as f:
            self.respond(200, f.read(), STATIC_TYPES[os.path.splitext(file)[1]])

    def read_body(self, max_bytes: int) -> bytes:
        length = self.headers.get('Content-Length')
        if length is None or not length.isdigit():
            self.close_connection = True
            raise RequestError(411, 'the request must state its Content-Length')
        if int(length) > max_bytes:
            self.close_connection = True # The body is not read: the connection cannot be reused.
            raise RequestError(413, f'upload of {int(length)} bytes: at most {max_bytes} bytes')
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            raise bad('the upload ended early')
        return data

    # The API.

    def api_networks(self, params: Params) -> None:
        self.respond_json(dict(networks=list(self.server.library.listing())))

    def api_info(self, params: Params) -> None:
        self.respond_json(self.server.library.get(params.text('network')).info)

    def api_render(self, params: Params) -> None:
        header, arrays = self.render_request(params)
        self.respond(200, encode_arrays(header, arrays), 'application/octet-stream')

    def render_request(self, params: Params) -> tuple[dict, dict]:
        if params.has('job'):
            job = self.server.jobs.get(params.text('job'))
            if job.state != 'done':
                raise RequestError(409, f'job={job.id}: the projection is {job.state}, not done')
            return dict(job.network.info, job=job.id), job.result
        network = self.server.library.get(params.text('network'))
        start = time.perf_counter()
        try:
            ws, options = request_ws(network, params)
        except ValueError as err: # The API's own checks (e.g. the class of a conditional network).
            raise bad(str(err)) from None
        noise_mode = params.choice('noise_mode', ('const', 'random', 'none'), 'const')
        transform = transform_matrix(params) if network.info['input_transform'] else None
        key = (network.key, tuple(sorted(options.items())), noise_mode, None if transform is None else transform.tobytes())
        cached = self.server.renders.get(key)
        if cached is not None:
            return dict(cached[0], cached=True), cached[1]
        arrays = render(network, ws, noise_mode, options['seed'], transform)
        header = dict(network.info, **options, noise_mode=noise_mode, render_ms=round((time.perf_counter() - start) * 1000, 2), cached=False)
        self.server.renders.put(key, header, arrays)
        return header, arrays

    def api_animation(self, params: Params) -> None:
        fmt = params.choice('format', ('gif', 'webp'), 'gif')
        scale = params.integer('scale', 1, MAX_ANIMATION_SCALE, 4)
        frame_ms = params.integer('frame_ms', 10, 2000, 100)
        header, arrays = self.render_request(params)
        if 'partials' not in arrays:
            raise bad(f'{header["class_name"]} does not paint: an animation is made of the painting steps')
        painted = dnnlib.EasyDict(partials=arrays['partials'][None, 1:], updates=arrays['updates'][None],
                                  refined=arrays['refined'][None] if 'refined' in arrays else None)
        frames = paintings.painting_animation_frames(painted, 0, scale=scale, with_updates=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f'painting.{fmt}')
            animation.save_animation(frames, path, frame_ms=frame_ms)
            with open(path, 'rb') as f:
                data = f.read()
        name = f'painting-{header["job"]}' if 'job' in header else f'painting-seed{header["seed"]:04d}'
        self.respond(200, data, f'image/{fmt}', {'Content-Disposition': f'attachment; filename="{name}.{fmt}"'})

    def api_project(self, params: Params) -> None:
        network = self.server.library.get(params.text('network'))
        num_steps = params.integer('num_steps', 1, MAX_PROJECTION_STEPS, 100)
        seed = params.integer('seed', 0, latents.MAX_SEED, 0)
        G = network.G
        class_idx = params.integer('class', 0, max(G.c_dim - 1, 0)) if G.c_dim > 0 else None
        target = read_target(self.read_body(MAX_UPLOAD_BYTES), G.img_resolution, G.img_channels)
        job = ProjectionJob(network, target, num_steps, seed, class_idx)
        self.server.jobs.start(job)
        self.respond_json(job.status())

    def api_job(self, params: Params) -> None:
        self.respond_json(self.server.jobs.get(params.text('id')).status())

    def api_cancel(self, params: Params) -> None:
        job = self.server.jobs.get(params.text('id'))
        job.cancelled = True
        self.respond_json(job.status())

#----------------------------------------------------------------------------

def make_server(networks_root: str, host: str = '127.0.0.1', port: int = 8000, device: str | torch.device = 'cpu', log=sys.stderr) -> Server:
    """A Server bound to host:port (port 0 = any free port), not yet serving (serve_forever)."""
    return Server((host, port), networks_root, misc.resolve_device(device), log=log)

@click.command()
@click.option('--networks', 'networks_root', help='A network file, or a folder searched for them (.pkl, .pt, .pth)', metavar='DIR|FILE', required=True)
@click.option('--port',                      help='TCP port (0: any free port)', type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option('--host',                      help='Interface to listen on; another than 127.0.0.1 lets other machines in', default='127.0.0.1', show_default=True)
@click.option('--device',                    help='auto, cpu, cuda or cuda:N: where the networks run', default='auto', show_default=True)
@click.option('--threads',                   help='torch CPU threads (0: torch\'s default, one per core)', type=click.IntRange(0, 256), default=1, show_default=True)
def main(networks_root, port, host, device, threads):
    """Serve the visualizer: a page that shows any network's samples and, for a Fast Weight
    Painter, its painting step by step (docs/visualizer.md). Open the printed URL in a browser;
    on a remote machine, forward the port first (ssh -L 8000:localhost:8000 HOST).

    \b
    python visualizer.py --networks=runs/
    python visualizer.py --networks=network-snapshot-001000.pkl --port=8080 --device=cuda
    """
    if not os.path.exists(networks_root):
        raise click.ClickException(f'--networks: "{networks_root}" does not exist (expected a network file or a folder of them)')
    try:
        device = misc.resolve_device(device)
    except ValueError as err:
        raise click.ClickException(f'--device: {err}') from None
    if threads > 0:
        # One thread by default: a render of one sample is a chain of small matrix-vector products
        # (the FPA's LSTM at batch 1), which more threads barely speed up and a loaded CPU slows
        # down a lot; each request runs in a thread of its own, so two tabs use two cores
        # (measured in bench/results.md).
        torch.set_num_threads(threads)
    try:
        server = make_server(networks_root, host, port, device)
    except OSError as err: # Address in use, no such interface, an unknown host name.
        raise click.ClickException(f'--host/--port: cannot listen on {host}:{port} ({err.strerror or err})') from None
    found = len(server.library.listing())
    print(f'{found} network file{"" if found == 1 else "s"} under "{networks_root}"; rendering on {device}')
    print(f'Serving the visualizer at {server.url}  (Ctrl-C stops it)', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print('Stopped.')
    finally:
        server.server_close()

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
