"""Generic utilities without a torch dependency: EasyDict, construction of objects by
class name, cached opening of local files and URLs, and formatting helpers."""

import hashlib
import importlib
import io
import os
import re
import tempfile
import time
import urllib.parse
from typing import Any, Callable, Collection

#----------------------------------------------------------------------------
# A dict whose keys are also attributes: the container for every *_kwargs.

class EasyDict(dict):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

#----------------------------------------------------------------------------
# Bounding the plain structures read from files (dicts, lists and what they hold).

MAX_STRUCTURE_DEPTH = 128           # Nesting levels of containers in any structure read from a file.
MAX_STRUCTURE_NODES = 1_000_000     # Values in it, counted each time they are reached (a list repeated by reference counts each time).

def check_structure_size(value: Any, where: str, children: Callable[[Any], Any] | None = None) -> None:
    """Refuse, with a ValueError naming `where`, a structure read from a file that nests deeper
    than MAX_STRUCTURE_DEPTH or reaches more than MAX_STRUCTURE_NODES values. A pickle can hold
    one small list referenced twice at each of 40 levels: a few hundred bytes on disk, 2^40
    values to any code that walks it. The walk itself stops at the limits, so it costs at most
    MAX_STRUCTURE_NODES steps. `children(obj)` gives what other objects hold (None: nothing)."""
    stack, num_nodes = [(value, 0)], 1
    while stack:
        item, depth = stack.pop()
        if depth > MAX_STRUCTURE_DEPTH:
            raise ValueError(f'{where}: data nested deeper than {MAX_STRUCTURE_DEPTH} levels')
        if isinstance(item, dict):
            kids = list(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            kids = item
        else:
            kids = children(item) if children is not None else None
        num_nodes += len(kids) if kids is not None else 0
        if num_nodes > MAX_STRUCTURE_NODES:
            raise ValueError(f'{where}: data with more than {MAX_STRUCTURE_NODES:,} values (lists or dicts repeated by reference?)')
        if kids:
            stack.extend((kid, depth + 1) for kid in kids if isinstance(kid, (dict, list, tuple, set, frozenset)) or children is not None)

#----------------------------------------------------------------------------
# Resolving dotted names ("networks.fpa.Generator") to objects, and calling them.

def get_obj_by_name(name: str) -> Any:
    """Import the longest importable module prefix of `name` and walk the rest as attributes."""
    parts = name.split('.')
    for split in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # Only swallow the error if it is this very module that is missing, not one it imports.
            if err.name is not None and module_name.startswith(err.name):
                continue
            raise
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise ValueError(f'"{name}": module "{module_name}" has no attribute "{".".join(parts[split:])}"') from None
        return obj
    raise ValueError(f'"{name}": cannot import any module prefix of this name')

def call_func_by_name(*args, func_name: str | Callable, **kwargs) -> Any:
    """Call `func_name` (a dotted name or a callable) with the given arguments."""
    func = get_obj_by_name(func_name) if isinstance(func_name, str) else func_name
    if not callable(func):
        raise ValueError(f'"{func_name}" is not callable')
    return func(*args, **kwargs)

def construct_class_by_name(*args, class_name: str | type, **kwargs) -> Any:
    """Construct `class_name` (a dotted name or a class) with the given arguments."""
    return call_func_by_name(*args, func_name=class_name, **kwargs)

def check_class_name(kwargs: Any, allowed: Collection[str], where: str) -> None:
    """Options read from a file (a network file's training_set_kwargs, a module entry) name the
    class to build in `class_name`. Refuse, with a ValueError naming the key and the value, any
    name that is not in the explicit allow-list `allowed`, before anything is imported or
    called: a file must never choose which callable runs."""
    name = kwargs.get('class_name') if isinstance(kwargs, dict) else None
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f'{where}: class_name={name!r} is not allowed here (expected {" or ".join(allowed)})')

#----------------------------------------------------------------------------
# Cache directory: set_cache_dir(), then $DNNLIB_CACHE_DIR, then ~/.cache/dnnlib, then tmp.

_cache_dir = None

def set_cache_dir(path: str | None) -> None:
    global _cache_dir
    _cache_dir = path

def make_cache_dir_path(*paths: str) -> str:
    if _cache_dir is not None:
        return os.path.join(_cache_dir, *paths)
    if 'DNNLIB_CACHE_DIR' in os.environ:
        return os.path.join(os.environ['DNNLIB_CACHE_DIR'], *paths)
    if 'HOME' in os.environ:
        return os.path.join(os.environ['HOME'], '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)

#----------------------------------------------------------------------------
# Opening local paths, file:// URLs and http(s) URLs (downloaded once into the cache).

def is_url(obj: Any, allow_file_urls: bool = False) -> bool:
    if not isinstance(obj, str) or '://' not in obj:
        return False
    scheme = urllib.parse.urlparse(obj).scheme
    return scheme in ('http', 'https') or (allow_file_urls and scheme == 'file')

def _file_url_to_path(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    path = urllib.parse.unquote(parsed.path)
    if os.name == 'nt' and re.match(r'^/[A-Za-z]:', path):
        path = path[1:]
    return path

# Bounds on one download (all attempts together): the time, and the size of the body.
MAX_DOWNLOAD_SECONDS = 15 * 60
MAX_DOWNLOAD_BYTES = 2 ** 31
DOWNLOAD_READ_TIMEOUT = 30          # Seconds without a byte from the server before an attempt fails.
MAX_DOWNLOAD_TIMEOUTS = 2           # Attempts that time out before the download is given up (a server that accepts and never answers).

class _DownloadRefused(Exception):
    """A download that another attempt would not fix (over a bound)."""

def _download(session, url: str, sink: Any, deadline: float, max_seconds: float, max_bytes: int) -> None:
    """One attempt: the body of `url` written to the file object `sink` (from its start), refused
    once it exceeds max_bytes or the deadline passes. Memory holds one chunk at a time."""
    sink.seek(0)
    sink.truncate()
    with session.get(url, timeout=(min(DOWNLOAD_READ_TIMEOUT, max(deadline - time.monotonic(), 1)), DOWNLOAD_READ_TIMEOUT), stream=True) as res:
        res.raise_for_status()
        size = res.headers.get('Content-Length', '')
        if size.isdigit() and int(size) > max_bytes:
            raise _DownloadRefused(f'the server announces {int(size):,} bytes, above the limit of {max_bytes:,} bytes for a download')
        total = 0
        for chunk in res.iter_content(chunk_size=2 ** 20):
            total += len(chunk)
            if total > max_bytes:
                raise _DownloadRefused(f'stopped after {max_bytes:,} bytes, the limit for a download')
            if time.monotonic() > deadline:
                raise _DownloadRefused(f'stopped after {format_time(max_seconds)} with {total:,} bytes received, '
                                       'the time limit for a download')
            sink.write(chunk)
        if total == 0:
            raise IOError('empty response')

def open_url(url: str, cache_dir: str | None = None, num_attempts: int = 10, verbose: bool = True,
             return_filename: bool = False, cache: bool = True, max_seconds: float = MAX_DOWNLOAD_SECONDS,
             max_bytes: int = MAX_DOWNLOAD_BYTES) -> Any:
    """Open a local path, a file:// URL or an http(s) URL as a binary file object.

    Downloads are cached under `<cache_dir>/downloads/<md5(url)>_<name>` and written
    atomically, so an interrupted download never leaves a truncated file in the cache.
    A download is bounded: all attempts together stop after `max_seconds`, an attempt fails
    after DOWNLOAD_READ_TIMEOUT seconds without data, and a body over `max_bytes` is refused.
    With return_filename=True the local path is returned instead of an open file.
    Raises IOError with a one-line message naming the URL when it cannot be opened.
    """
    if not isinstance(url, str) or not url:
        raise IOError(f'open_url: expected a path or URL string, got {url!r}')

    # Local files.
    if not is_url(url, allow_file_urls=True):
        if os.path.isdir(url):
            raise IOError(f'{url}: is a directory, expected a file')
        if not os.path.isfile(url):
            raise IOError(f'{url}: no such file')
        return url if return_filename else open(url, 'rb')
    if url.startswith('file://'):
        path = _file_url_to_path(url)
        if not os.path.isfile(path):
            raise IOError(f'{url}: no such file')
        return path if return_filename else open(path, 'rb')

    # Cached downloads.
    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    if cache:
        for name in sorted(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else []:
            if name.startswith(url_md5 + '_'):
                path = os.path.join(cache_dir, name)
                return path if return_filename else open(path, 'rb')

    if return_filename and not cache:
        raise ValueError('open_url: return_filename=True requires cache=True for URLs')
    url_name = os.path.basename(urllib.parse.urlparse(url).path) or 'download'
    url_name = re.sub(r'[^0-9a-zA-Z._-]', '_', url_name)
    if cache:   # The body goes to a temporary file beside its cache entry, renamed into place when complete.
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=cache_dir, prefix='.tmp-')
        sink = os.fdopen(fd, 'w+b')
    else:
        sink = io.BytesIO()
    try:
        complete = _download_attempts(url, sink, num_attempts, verbose, max_seconds, max_bytes)
    except BaseException:
        if cache:
            sink.close()
            os.remove(tmp_path)
        raise
    if verbose:
        print(' done')
    if not cache:
        complete.seek(0)
        return complete
    sink.close()
    path = os.path.join(cache_dir, f'{url_md5}_{url_name}')
    os.replace(tmp_path, path)
    return path if return_filename else open(path, 'rb')

def _download_attempts(url: str, sink: Any, num_attempts: int, verbose: bool, max_seconds: float, max_bytes: int) -> Any:
    """Up to num_attempts downloads of `url` into `sink` within the bounds (see open_url);
    returns `sink` holding the body, or raises IOError naming the URL."""
    import requests # Imported lazily: only downloads need it.
    data, last_error, num_timeouts = None, None, 0
    deadline = time.monotonic() + max_seconds
    with requests.Session() as session:
        for attempt in range(num_attempts):
            if verbose and attempt == 0:
                print(f'Downloading {url} ...', end='', flush=True)
            try:
                _download(session, url, sink, deadline, max_seconds, max_bytes)
                data = sink
                break
            except _DownloadRefused as err:     # Too large, or out of time: trying again cannot help.
                if verbose:
                    print(' failed')
                raise IOError(f'{url}: {err}') from None
            except Exception as err: # Network errors get retried; a client error (4xx, e.g. 404) or repeated timeouts are final.
                last_error = err
                status = getattr(getattr(err, 'response', None), 'status_code', None)
                num_timeouts += isinstance(err, requests.Timeout)
                if (status is not None and 400 <= status < 500) or num_timeouts >= MAX_DOWNLOAD_TIMEOUTS:
                    num_attempts = attempt + 1
                    break
                if time.monotonic() + min(2 ** attempt, 8) * 0.1 >= deadline:
                    num_attempts = attempt + 1
                    break
                time.sleep(min(2 ** attempt, 8) * 0.1)
    if data is None:
        if verbose:
            print(' failed')
        spent = f' in {format_time(max_seconds)}' if time.monotonic() >= deadline - 1 else ''
        raise IOError(f'{url}: download failed after {num_attempts} attempt{"s" if num_attempts != 1 else ""}{spent} '
                      f'({type(last_error).__name__}: {" ".join(str(last_error).split())[:200]})')
    return data

#----------------------------------------------------------------------------
# Writing files atomically: the destination either keeps its old content or gets the new one.

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place. The file gets
    the permissions of an ordinary new file (0666 minus the umask; mkstemp alone gives 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-' + os.path.basename(path) + '-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise

#----------------------------------------------------------------------------
# Formatting.

def format_time(seconds: float) -> str:
    """'12s', '3m 05s', '2h 01m 09s', '1d 03h 04m'."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {(s // 60) % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {(s // 3600) % 24:02d}h {(s // 60) % 60:02d}m'

#----------------------------------------------------------------------------
# Parsing command-line lists.

def parse_int_list(text: str | list, max_count: int | None = None) -> list[int]:
    """'0,3,5-8' -> [0, 3, 5, 6, 7, 8]. Raises ValueError naming the bad part, or saying that
    there are more than max_count values (checked before a range is expanded)."""
    too_many = ValueError(f'more than {max_count:,} values, the limit (split the list over several runs)') if max_count else None
    if isinstance(text, list):
        values = [int(x) for x in text]
    else:
        values = []
        for part in str(text).split(','):
            part = part.strip()
            m = re.fullmatch(r'(\d+)-(\d+)', part)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise ValueError(f'"{part}": range end is below its start')
                if max_count is not None and len(values) + hi - lo + 1 > max_count:
                    raise too_many
                values.extend(range(lo, hi + 1))
            elif re.fullmatch(r'\d+', part):
                values.append(int(part))
            else:
                raise ValueError(f'"{part}": expected a non-negative integer or a range like 5-12')
    if max_count is not None and len(values) > max_count:
        raise too_many
    return values
