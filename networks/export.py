"""Export networks of this codebase as StyleGAN2-ADA network pickles.

This is the only place where this codebase writes a file that carries code: network files
(torch_utils/persistence.py) stay code-free and are what every script writes by default.
`legacy.py --to=upstream` calls `export_upstream_pickle` so that a network trained here runs in
StyleGAN2-ADA's and StyleGAN3's own tools (`legacy.load_network_pkl`, generate.py, ...).

The format is upstream's `torch_utils.persistence` (version 6): a plain pickle of a dict
{G, D, G_ema, augment_pipe, training_set_kwargs}; every module of ours is stored as the call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
    meta = {type: 'class', version: 6, class_name, state: the module's __dict__,
            module_src: the source of the module that defines the class}.
Upstream's unpickler executes module_src in a fresh module and restores the state into the
class of that name. The source is ours: the defining file of this codebase
(networks/stylegan2.py, networks/fpa.py, networks/unet.py, training/augment.py) as it is,
after a one-line header and followed by UPSTREAM_ADAPTER, which adapts the only call whose
signature differs from upstream's (`misc.assert_shape` with a name). Those files import only
what upstream's `torch_utils` and `dnnlib` provide under the same names (`persistence`, `misc`,
`ops.bias_act`, `ops.conv2d_resample`, `ops.upfirdn2d`, `ops.fma`, `ops.conv2d_gradfix`,
`ops.grid_sample_gradfix`, `dnnlib.util`); `check_source_imports` holds them to that.

Tensor and attribute names are ours, which for StyleGAN2 are upstream's one for one
(`G.synthesis.b64.conv1`, `G.mapping.w_avg`). Constructor arguments (`init_kwargs`) are ours
too: upstream code that rebuilds a network from them with its own classes
(`legacy.load_network_pkl(force_fp16=True)`) does not apply.

Reading an exported file back (networks/upstream.py) never executes the embedded source:
the header names the module of this codebase that the source came from, and the records are
rebuilt from our own classes on the persistence allow-list, as any network file is.
"""

import ast
import importlib
import inspect
import io
import pickle
import types

import torch

import dnnlib

#----------------------------------------------------------------------------

# The modules of this codebase whose classes an export embeds, with their source.
EXPORTED_MODULES = ('networks.stylegan2', 'networks.fpa', 'networks.unet', 'training.augment')

# First line of every embedded source; networks/upstream.py reads the module name after it.
EXPORT_HEADER = '# fpa-gan export of module '

# What the embedded sources may import: the standard library modules below, torch, numpy,
# and upstream's torch_utils/dnnlib modules that exist under the same names.
ALLOWED_IMPORTS = (
    'math', 'typing', 'numpy', 'torch',
    'dnnlib', 'dnnlib.util',
    'torch_utils', 'torch_utils.misc', 'torch_utils.persistence', 'torch_utils.ops',
    'torch_utils.ops.bias_act', 'torch_utils.ops.conv2d_resample', 'torch_utils.ops.upfirdn2d',
    'torch_utils.ops.fma', 'torch_utils.ops.conv2d_gradfix', 'torch_utils.ops.grid_sample_gradfix',
)

# Appended to every embedded source. Upstream's misc.assert_shape(tensor, ref_shape) takes no
# name; ours takes one as a third argument. Rebinding the module-level name `misc` after the
# file's own import redirects every call made at run time.
UPSTREAM_ADAPTER = '''

#----------------------------------------------------------------------------
# Added on export (networks/export.py): calls of this file as upstream's torch_utils takes them.

class _MiscWithNames:
    """torch_utils.misc whose assert_shape accepts this codebase's name argument."""
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def assert_shape(self, tensor, ref_shape, name=None):
        _ = name
        self._module.assert_shape(tensor, ref_shape)

misc = _MiscWithNames(misc)
'''

# Globals (module prefixes) the pickle may name besides upstream's reconstruction function:
# what any upstream checkout has.
ALLOWED_GLOBAL_MODULES = ('torch', 'collections', 'builtins', 'copyreg', 'numpy', '_codecs', 'dnnlib.util')

UPSTREAM_PERSISTENCE_VERSION = 6

#----------------------------------------------------------------------------

def _imported_names(src: str) -> list[str]:
    """The modules imported at module level: what upstream's unpickler runs when it executes the
    source. (An import inside a function runs only when a network is constructed, e.g. the
    FPA's U-Net lookup, which loading and calling a network never do.)"""
    names = []
    for node in ast.parse(src).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [node.module] if node.level == 0 else ['.' * node.level + (node.module or '')]
            names += [f'{node.module}.{alias.name}' for alias in node.names if f'{node.module}.{alias.name}' in ALLOWED_IMPORTS]
    return names

def check_source_imports(module_name: str, src: str) -> None:
    """Every module-level import of an embedded source must exist in an upstream checkout (ALLOWED_IMPORTS)."""
    bad = [name for name in _imported_names(src) if name not in ALLOWED_IMPORTS and name.split('.')[0] not in ('numpy', 'torch')]
    if bad:
        raise ValueError(f'{module_name}: imports {", ".join(sorted(set(bad)))}, which an upstream checkout does not provide')

def module_source(module_name: str) -> str:
    """The source embedded for the classes of one of EXPORTED_MODULES."""
    assert module_name in EXPORTED_MODULES, module_name
    src = inspect.getsource(importlib.import_module(module_name))
    check_source_imports(module_name, src)
    return f'{EXPORT_HEADER}{module_name}\n{src.rstrip()}\n{UPSTREAM_ADAPTER}'

def exported_module_name(src: str) -> str | None:
    """The module of this codebase an embedded source came from (its header), or None."""
    first_line = src.split('\n', 1)[0]
    return first_line[len(EXPORT_HEADER):].strip() if first_line.startswith(EXPORT_HEADER) else None

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):
    """Stands for upstream's torch_utils.persistence._reconstruct_persistent_obj in the pickle
    (written by name; never called here)."""
    raise AssertionError('only written into export pickles, never called')

class _ExportPickler(pickle._Pickler):  # pylint: disable=protected-access
    """The Python pickler with our modules written as upstream persistence records.
    sources: module name -> embedded source (normally module_source of each)."""
    def __init__(self, file, sources: dict[str, str], protocol: int = 4):
        super().__init__(file, protocol=protocol)
        self.sources = sources

    def reducer_override(self, obj):
        if isinstance(obj, torch.nn.Module) and type(obj).__module__ in self.sources:
            return _reconstruct_persistent_obj, (self.record_meta(obj),)
        if isinstance(obj, torch.nn.Module) and type(obj).__module__.split('.')[0] != 'torch':
            raise ValueError(f'cannot export a {type(obj).__module__}.{type(obj).__name__}: only torch modules and '
                             f'those of {", ".join(EXPORTED_MODULES)}')
        return NotImplemented

    def record_meta(self, module: torch.nn.Module) -> dict:
        """The module's state as upstream's persistent_class pickles it: its __dict__, with the
        constructor arguments as `_init_args`/`_init_kwargs` (upstream's `init_kwargs` is a
        property over them) instead of our `init_kwargs`/`class_name` attributes."""
        state = dict(module.__getstate__())
        init_kwargs = state.pop('init_kwargs', None)
        state.pop('class_name', None)
        state['_init_args'] = ()
        state['_init_kwargs'] = dnnlib.EasyDict(init_kwargs or {})
        return dict(type='class', version=UPSTREAM_PERSISTENCE_VERSION, module_src=self.sources[type(module).__module__],
                    class_name=type(module).__name__, state=state)

    def save(self, obj, save_persistent_id=True):
        if obj is _reconstruct_persistent_obj:
            self.write(pickle.GLOBAL + b'torch_utils.persistence\n_reconstruct_persistent_obj\n')
            return
        super().save(obj, save_persistent_id)

    def save_global(self, obj, name=None):
        module = getattr(obj, '__module__', None) or ''
        if module.split('.')[0] not in ALLOWED_GLOBAL_MODULES and module not in ALLOWED_GLOBAL_MODULES:
            raise ValueError(f'cannot export a reference to {module}.{name or getattr(obj, "__qualname__", "?")}: '
                             'an upstream checkout does not have it')
        super().save_global(obj, name)

    # The base class dispatches functions to its own save_global; route them through ours.
    dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access
    dispatch[types.FunctionType] = save_global

def export_bytes(entries: dict, sources: dict[str, str] | None = None) -> bytes:
    """The pickle of `entries` (name -> module, plain data or None) in upstream's format.
    `sources`: module name -> embedded source; default module_source of each exported module."""
    if sources is None:
        sources = {name: module_source(name) for name in EXPORTED_MODULES}
    buffer = io.BytesIO()
    _ExportPickler(buffer, sources).dump(entries)
    return buffer.getvalue()

def export_upstream_pickle(path: str, G, D, G_ema, augment_pipe=None, training_set_kwargs=None) -> None:
    """Write the networks as a StyleGAN2-ADA network pickle at `path` (atomically).
    Upstream's legacy.load_network_pkl requires G, D and G_ema to be modules."""
    for name, value in dict(G=G, D=D, G_ema=G_ema).items():
        if not isinstance(value, torch.nn.Module):
            raise ValueError(f'{path}: upstream network pickles need {name}, a module; the source has '
                             f'{"none" if value is None else "a " + type(value).__name__}')
    entries = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, training_set_kwargs=training_set_kwargs)
    dnnlib.util.atomic_write(path, export_bytes(entries))

#----------------------------------------------------------------------------
