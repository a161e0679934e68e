"""Test fixtures in StyleGAN2-ADA / StyleGAN3's on-disk network-pickle format, written by our
own code (no upstream code is used or needed).

Upstream pickles a dict {G, D, G_ema, augment_pipe, training_set_kwargs}; every module of its
`torch_utils.persistence` is stored as a call `torch_utils.persistence._reconstruct_persistent_obj(meta)`
with meta = {type: 'class', version: 6, module_src: <source of the defining module>,
class_name, state: the module's __dict__}, and `dnnlib.util.EasyDict`s as instances of that
class. `write_upstream_pickle` writes exactly those opcodes, for a module tree taken from one of
our modules (whose attribute names, class names and tensors are upstream's one for one), with
the top-level constructor arguments given in upstream's spelling. The embedded source is a
payload: executing it would create `marker` (and raise), so a test can prove it never runs.
Nested records carry their state but empty constructor arguments (nothing reads them).

The other direction, networks this codebase exports in upstream's format (networks/export.py),
is checked in `upstream_environment()`: stand-ins for the modules an upstream checkout gives
the code embedded in its pickles (`torch_utils.persistence`, `misc`, `ops.*`, `dnnlib`), with
upstream's signatures, written here (the arithmetic delegates to our ops). Inside it, a plain
`pickle.load` unpickles a file the way upstream's persistence does: each record's source is
executed in a fresh module and its state restored into the class of that name.
"""

import collections
import contextlib
import copy
import functools
import pickle
import sys
import types
import uuid

import torch

from dnnlib.util import EasyDict
from torch_utils import misc as our_misc
from torch_utils.ops import bias_act as our_bias_act
from torch_utils.ops import conv2d_gradfix as our_conv2d_gradfix
from torch_utils.ops import conv2d_resample as our_conv2d_resample
from torch_utils.ops import fma as our_fma
from torch_utils.ops import grid_sample_gradfix as our_grid_sample_gradfix
from torch_utils.ops import upfirdn2d as our_upfirdn2d

# Markers the importer reads in the embedded source to tell the defining file apart.
SOURCE_MARKERS = {
    'stylegan2-ada':       'class SynthesisBlock: pass\nclass DiscriminatorBlock: pass\n',
    'stylegan3-stylegan2': 'class SynthesisBlock: pass\nclass DiscriminatorBlock: pass\n# fused_modconv_default\n',
    'stylegan3':           'class SynthesisInput: pass\nclass SynthesisLayer: pass\n',
    'augment':             'class AugmentPipe: pass\n',
}

class _Global:
    """A reference to module.name, written as a GLOBAL opcode without importing anything."""
    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise AssertionError('only written, never called')

class _Record:
    """Pickles as upstream's persistent-object reconstruction call."""
    def __init__(self, meta: dict):
        self.meta = meta

    def __reduce__(self):
        return (_Global('torch_utils.persistence', '_reconstruct_persistent_obj'), (self.meta,))

class _UpstreamEasyDict(dict):
    """Pickles as an instance of dnnlib.util.EasyDict (NEWOBJ, then the items)."""

class _Pickler(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode('utf-8'))
            return
        if isinstance(obj, _UpstreamEasyDict):
            self.save(_Global('dnnlib.util', 'EasyDict'))
            self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
            self._batch_setitems(iter(obj.items()))
            return
        super().save(obj, save_persistent_id)

def easydicts(value):
    """Dicts -> upstream EasyDicts, recursively (as upstream's training scripts build kwargs)."""
    if isinstance(value, dict):
        return _UpstreamEasyDict({k: easydicts(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(easydicts(v) for v in value)
    return value

def module_record(module: torch.nn.Module, module_src: str, class_name: str | None = None, init_kwargs: dict | None = None) -> _Record:
    """The persistent record of `module` and, recursively, its children."""
    non_persistent = set(getattr(module, '_non_persistent_buffers_set', set()))
    state = dict(
        training        = False,
        _parameters     = collections.OrderedDict((k, v.detach().clone() if v is not None else None) for k, v in module._parameters.items()),
        _buffers        = collections.OrderedDict((k, v.detach().clone()) for k, v in module._buffers.items() if v is not None and k not in non_persistent),
        _non_persistent_buffers_set = set(),
        _modules        = collections.OrderedDict((k, module_record(v, module_src)) for k, v in module._modules.items() if v is not None),
        _init_args      = (),
        _init_kwargs    = easydicts(init_kwargs or {}),
    )
    meta = dict(type='class', version=6, module_src=module_src, class_name=class_name or type(module).__name__, state=state)
    return _Record(meta)

def payload_source(marker: str, flavour: str) -> str:
    """Module source that creates `marker` and raises if anyone executes it."""
    return (f'import pathlib\npathlib.Path({str(marker)!r}).write_text("the embedded source ran")\n'
            f'raise RuntimeError("upstream source executed")\n' + SOURCE_MARKERS[flavour])

def write_upstream_pickle(path, entries: dict, protocol: int = 4) -> None:
    """entries: name -> _Record, plain data or None (e.g. G, D, G_ema, augment_pipe, training_set_kwargs)."""
    with open(path, 'wb') as f:
        _Pickler(f, protocol=protocol).dump({k: easydicts(v) if isinstance(v, dict) else v for k, v in entries.items()})

def write_tensorflow_pickle(path) -> None:
    """The shape of a TensorFlow-era StyleGAN pickle: a tuple of three dnnlib.tflib Network objects."""
    class _Network:
        def __reduce__(self):
            return (_Global('dnnlib.tflib.network', 'Network'), (), dict(version=4, name='G', variables=[]))
    with open(path, 'wb') as f:
        _Pickler(f, protocol=2).dump((_Network(), _Network(), _Network()))

#----------------------------------------------------------------------------
# Stand-in upstream environment (see the module docstring).

def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module

def _assert_shape(tensor, ref_shape):
    """Upstream's signature: no name argument."""
    if tensor.ndim != len(ref_shape) or any(ref is not None and size != ref for size, ref in zip(tensor.shape, ref_shape)):
        raise AssertionError(f'wrong shape: got {list(tensor.shape)}, expected {list(ref_shape)}')

def _persistence_module() -> types.ModuleType:
    """upstream's torch_utils.persistence, as much of it as unpickling uses (format version 6)."""
    wrapped, src_to_module, module_to_src = set(), {}, {}

    def persistent_class(cls):
        """cls with upstream's init_args/init_kwargs properties over the stored _init_args and
        _init_kwargs, pickled (and deep-copied) as a persistence record again."""
        if cls in wrapped:
            return cls
        source, name = module_to_src[cls.__module__], cls.__name__

        def as_record(self):
            state = dict(vars(self))
            return _reconstruct_persistent_obj, (dict(type='class', version=6, module_src=source, class_name=name, state=state),)

        persistent = type(name, (cls,), dict(
            __reduce__  = as_record,
            init_args   = property(lambda self: copy.deepcopy(self._init_args)),
            init_kwargs = property(lambda self: EasyDict(copy.deepcopy(self._init_kwargs))),
        ))
        wrapped.add(persistent)
        return persistent

    def _reconstruct_persistent_obj(meta):
        meta = EasyDict(meta)
        assert meta.type == 'class' and meta.version == 6, meta.keys()
        module = src_to_module.get(meta.module_src)
        if module is None:
            module = types.ModuleType(f'_imported_module_{uuid.uuid4().hex}')
            sys.modules[module.__name__] = module
            src_to_module[meta.module_src] = module
            module_to_src[module.__name__] = meta.module_src
            exec(meta.module_src, module.__dict__)   # pylint: disable=exec-used  (what upstream does; the test's point)
        cls = persistent_class(module.__dict__[meta.class_name])
        obj = cls.__new__(cls)
        obj.__setstate__(EasyDict(meta.state))
        return obj

    _reconstruct_persistent_obj.__module__, _reconstruct_persistent_obj.__qualname__ = 'torch_utils.persistence', '_reconstruct_persistent_obj'
    return _module('torch_utils.persistence', persistent_class=persistent_class, _reconstruct_persistent_obj=_reconstruct_persistent_obj,
                   is_persistent=lambda obj: obj in wrapped or type(obj) in wrapped)

@functools.cache
def _standin_modules() -> dict[str, types.ModuleType]:
    """Built once: objects unpickled in one `with upstream_environment()` keep working in the next."""
    def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
        return our_bias_act.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
        return our_conv2d_resample.conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
    def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
        return our_upfirdn2d.setup_filter(f, device=device, normalize=normalize, flip_filter=flip_filter, gain=gain, separable=separable)
    def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
        return our_upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
        return our_upfirdn2d.filter2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain)
    def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
        return our_upfirdn2d.upsample2d(x, f, up=up, padding=padding, flip_filter=flip_filter, gain=gain)
    def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
        return our_upfirdn2d.downsample2d(x, f, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):   # pylint: disable=redefined-builtin
        return our_conv2d_gradfix.conv2d(input, weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):   # pylint: disable=redefined-builtin
        return our_conv2d_gradfix.conv_transpose2d(input, weight, bias=bias, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)

    ops = dict(
        bias_act            = _module('torch_utils.ops.bias_act', bias_act=bias_act),
        conv2d_resample     = _module('torch_utils.ops.conv2d_resample', conv2d_resample=conv2d_resample),
        upfirdn2d           = _module('torch_utils.ops.upfirdn2d', setup_filter=setup_filter, upfirdn2d=upfirdn2d, filter2d=filter2d,
                                      upsample2d=upsample2d, downsample2d=downsample2d),
        fma                 = _module('torch_utils.ops.fma', fma=lambda a, b, c: our_fma.fma(a, b, c)),
        conv2d_gradfix      = _module('torch_utils.ops.conv2d_gradfix', conv2d=conv2d, conv_transpose2d=conv_transpose2d,
                                      no_weight_gradients=our_conv2d_gradfix.no_weight_gradients),
        grid_sample_gradfix = _module('torch_utils.ops.grid_sample_gradfix', grid_sample=lambda input, grid: our_grid_sample_gradfix.grid_sample(input, grid)),
    )
    top = dict(
        misc        = _module('torch_utils.misc', assert_shape=_assert_shape, copy_params_and_buffers=our_misc.copy_params_and_buffers),
        persistence = _persistence_module(),
        ops         = _module('torch_utils.ops', **ops),
    )
    util = _module('dnnlib.util', EasyDict=EasyDict)
    modules = {'torch_utils': _module('torch_utils', **top), 'dnnlib': _module('dnnlib', EasyDict=EasyDict, util=util), 'dnnlib.util': util}
    modules.update({f'torch_utils.{name}': module for name, module in top.items()})
    modules.update({f'torch_utils.ops.{name}': module for name, module in ops.items()})
    return modules

@contextlib.contextmanager
def upstream_environment():
    """Within: `torch_utils` and `dnnlib` are the stand-ins (a plain pickle.load of an upstream
    pickle executes its embedded source against them). Afterwards ours are back."""
    modules = _standin_modules()
    saved = {name: sys.modules.get(name) for name in modules}
    before = set(sys.modules)
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name in set(sys.modules) - before:
            if name.startswith('_imported_module_'):
                del sys.modules[name]

def load_as_upstream(path) -> dict:
    """The unpickled dict of an upstream pickle, as upstream's code would hold it."""
    with upstream_environment(), open(path, 'rb') as f:
        return pickle.load(f)
