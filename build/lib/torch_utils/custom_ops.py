"""Just-in-time builds of the CUDA plugins behind torch_utils/ops (bias_act, upfirdn2d).

`get_plugin(module_name, sources, headers, source_dir, **build_kwargs)` compiles the
sources with ninja and nvcc through `torch.utils.cpp_extension.load` on first use and
returns the imported module. Policy (see docs/ops.md):

- One build directory per content hash: md5 of the sources and headers (names and bytes),
  the torch and CUDA versions and the GPU name, under $TORCH_EXTENSIONS_DIR or
  ~/.cache/torch_extensions. The sources are copied there atomically (a temporary
  directory renamed with os.replace), so an edited source never reuses a stale build and
  a half-copied directory is never seen.
- Builds are serialised by a lock file with a timeout. A lock left by a dead process on
  this host is removed; any other lock that outlives the timeout raises an error naming
  the file to delete. Torch's own 'lock' file (which hangs forever when stale, the
  classic "stuck at Setting up PyTorch plugin") is removed while we hold our lock.
- A failure (no nvcc, no ninja, compiler error, ...) raises PluginUnavailable. It is
  remembered per module: the reason is warned about once, later calls fail immediately
  without retrying, and the ops fall back to their reference implementations.
- Only the ops' CUDA paths ask for plugins; CPU tensors never trigger a build.
"""

import hashlib
import os
import shutil
import socket
import time
import uuid
import warnings

import torch

#----------------------------------------------------------------------------

verbosity = 'brief'       # 'none', 'brief' (one line per build) or 'full' (compiler output).
lock_timeout_s = 600.0    # Seconds to wait for another process's build before giving up.

class PluginUnavailable(RuntimeError):
    """A plugin could not be built or loaded; the message says why."""

_loaded: dict = {}        # module_name -> module
_failed: dict = {}        # module_name -> reason (str)

#----------------------------------------------------------------------------

def get_plugin(module_name: str, sources: list[str], headers: list[str] | None = None, source_dir: str | None = None,
               **build_kwargs):
    """Build (once) and import a CUDA extension; raise PluginUnavailable on failure."""
    if module_name in _loaded:
        return _loaded[module_name]
    if module_name in _failed:
        raise PluginUnavailable(_failed[module_name])
    if verbosity != 'none':
        print(f'Setting up PyTorch plugin "{module_name}"... ', end='', flush=True)
    try:
        module = _build_and_import(module_name, sources, headers or [], source_dir, build_kwargs)
    except Exception as err: # pylint: disable=broad-except
        reason = f'could not build the CUDA plugin "{module_name}": {_one_line(err)}'
        _failed[module_name] = reason
        if verbosity != 'none':
            print('Failed!')
        warnings.warn(f'{reason}. Ops that pick their implementation use their torch code instead (slower); '
                      f'impl=\'cuda\' raises. See docs/ops.md, "Troubleshooting".', stacklevel=2)
        raise PluginUnavailable(reason) from err
    if verbosity != 'none':
        print('Done.')
    _loaded[module_name] = module
    return module

def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = f'{type(err).__name__}: {lines[0] if lines else ""}'
    if len(lines) > 1:
        text += f' (+{len(lines) - 1} more lines; set custom_ops.verbosity = "full" to see the compiler output)'
    return text

#----------------------------------------------------------------------------

def _build_and_import(module_name, sources, headers, source_dir, build_kwargs):
    if source_dir is not None:
        sources = [os.path.join(source_dir, s) for s in sources]
        headers = [os.path.join(source_dir, h) for h in headers]
    from torch.utils import cpp_extension # pylint: disable=import-outside-toplevel
    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError('no CUDA toolkit found (nvcc not on PATH and CUDA_HOME unset); the plugins need a local '
                           'CUDA toolkit matching torch.version.cuda')
    cpp_extension.verify_ninja_availability()

    build_dir = _prepare_build_dir(module_name, sources + headers)
    with _BuildLock(os.path.join(build_dir, '.build.lock')):
        stale_torch_lock = os.path.join(build_dir, 'lock')
        if os.path.exists(stale_torch_lock): # We hold our lock, so nobody else is building here.
            os.remove(stale_torch_lock)
        copied_sources = [os.path.join(build_dir, os.path.basename(s)) for s in sources]
        return cpp_extension.load(name=module_name, build_directory=build_dir, sources=copied_sources,
                                  verbose=(verbosity == 'full'), **build_kwargs)

def _extensions_root() -> str:
    return os.environ.get('TORCH_EXTENSIONS_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'torch_extensions')

def _source_digest(files: list[str]) -> str:
    md5 = hashlib.md5()
    for path in files:
        md5.update(os.path.basename(path).encode('utf-8') + b'\0')
        with open(path, 'rb') as f:
            md5.update(f.read() + b'\0')
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'nogpu'
    md5.update(f'{torch.__version__}|{torch.version.cuda}|{gpu}'.encode('utf-8'))
    return md5.hexdigest()

def _prepare_build_dir(module_name: str, files: list[str]) -> str:
    """Copy `files` into <root>/<module_name>-<digest>, atomically; return that path."""
    root = _extensions_root()
    build_dir = os.path.join(root, f'{module_name}-{_source_digest(files)}')
    if not os.path.isdir(build_dir):
        os.makedirs(root, exist_ok=True)
        tmp_dir = os.path.join(root, f'.tmp-{module_name}-{uuid.uuid4().hex}')
        os.makedirs(tmp_dir)
        try:
            for path in files:
                shutil.copyfile(path, os.path.join(tmp_dir, os.path.basename(path)))
            try:
                os.replace(tmp_dir, build_dir)
            except OSError: # Another process created it first; theirs has the same contents.
                if not os.path.isdir(build_dir):
                    raise
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return build_dir

#----------------------------------------------------------------------------

class _BuildLock:
    """An exclusive lock file holding 'host pid'. Waits up to `lock_timeout_s`; removes a
    lock whose process is gone (same host); otherwise times out with a clear message."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        deadline = time.monotonic() + lock_timeout_s
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._holder_is_dead():
                    self._remove()
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f'waited {lock_timeout_s:.0f} s for the build lock {self.path} '
                                       f'(held by {self._read() or "an unknown process"}). If no other process is '
                                       f'building this plugin, the lock is stale: delete that file and retry') from None
                time.sleep(0.5)
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(f'{socket.gethostname()} {os.getpid()}')
            return self

    def __exit__(self, *_):
        self._remove()
        return False

    def _read(self) -> str:
        try:
            with open(self.path, encoding='utf-8') as f:
                return f.read().strip()
        except OSError:
            return ''

    def _remove(self):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def _holder_is_dead(self) -> bool:
        parts = self._read().split()
        if len(parts) != 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
            return False # Another host, or being written: cannot tell.
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

#----------------------------------------------------------------------------
