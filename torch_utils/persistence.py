"""Network files that never execute code when loaded.

StyleGAN2-ADA pickles embed the source of the defining module and `exec` it on load. Here a
network file is a `torch.save` of plain data only: for every module, the dotted name of its
class, the keyword arguments it was constructed with, and its state dict. Loading uses
`torch.load(weights_only=True)` (tensors, numbers, strings, lists, dicts only) and rebuilds
each module from *this* codebase's classes, which must be marked with `@persistent_class`
and be on the explicit allow-list NETWORK_CLASSES (checked before the name is imported);
the sizes the stored constructor arguments ask for are bounded before anything is
allocated (check_init_kwargs). The class names and constructor arguments of persistent
classes are therefore a compatibility promise.

File layout (a dict):
    format:  'fpa-gan-network'
    version: 1
    <name>:  {'class_name': str, 'init_kwargs': dict, 'state_dict': dict} for modules,
             or plain data (e.g. training_set_kwargs), or None.
"""

import copy
import functools
import inspect
import io
import os
import re
import warnings
from typing import Any

import torch

from dnnlib import util

FORMAT_NAME = 'fpa-gan-network'
FORMAT_VERSION = 1

# The classes a network file may name: the allow-list is checked before a name is imported or
# anything is called. Every @persistent_class of the codebase is here (a test checks it).
NETWORK_CLASSES = (
    'networks.fpa.Generator',
    'networks.stylegan2.Generator',
    'networks.stylegan2.Discriminator',
    'networks.stylegan3.Generator',
    'networks.unet.UNet',
    'training.augment.AugmentPipe',
)

# Bounds on what a network file's init_kwargs may ask a constructor to allocate, checked
# before the real construction (see check_init_kwargs).
MAX_INIT_INT = 2 ** 16              # Largest integer in init_kwargs (sizes, layer counts, label dims).
MAX_UNSTORED_BYTES = 2 ** 28        # Tensors a module may hold beyond those the file stores (non-persistent buffers).

#----------------------------------------------------------------------------

def persistent_class(cls: type) -> type:
    """Class decorator: record the constructor's keyword arguments as `self.init_kwargs`
    so that `save_network` can store them, and mark the class as loadable by name."""
    assert isinstance(cls, type) and issubclass(cls, torch.nn.Module), 'persistent_class expects an nn.Module subclass'
    orig_init = cls.__init__
    signature = inspect.signature(orig_init)

    @functools.wraps(orig_init)
    def __init__(self, *args, **kwargs):
        if type(self) is cls:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            init_kwargs = {}
            for name, param in list(bound.signature.parameters.items())[1:]:
                if param.kind == inspect.Parameter.VAR_KEYWORD:
                    init_kwargs.update(bound.arguments.get(name, {}))
                elif param.kind == inspect.Parameter.VAR_POSITIONAL:
                    raise TypeError(f'{cls.__qualname__}: persistent classes cannot take *args')
                else:
                    init_kwargs[name] = bound.arguments[name]
            init_kwargs = copy.deepcopy(init_kwargs)
        orig_init(self, *args, **kwargs)
        if type(self) is cls:
            self.init_kwargs = util.EasyDict(init_kwargs)
            self.class_name = f'{cls.__module__}.{cls.__qualname__}'

    cls.__init__ = __init__
    cls._persistent = True
    return cls

def is_persistent(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module) and getattr(type(obj), '_persistent', False) and hasattr(obj, 'init_kwargs')

#----------------------------------------------------------------------------

def _to_plain(value: Any) -> Any:
    """EasyDicts and tuples become dicts and lists so that weights_only loading accepts them."""
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f'cannot store a value of type {type(value).__name__} in a network file')

def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return util.EasyDict({k: _from_plain(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value

def module_to_data(module: torch.nn.Module) -> dict:
    if not is_persistent(module):
        raise TypeError(f'{type(module).__name__} is not a @persistent_class and cannot be saved in a network file')
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    return dict(class_name=module.class_name, init_kwargs=_to_plain(module.init_kwargs), state_dict=state)

def module_from_data(data: dict, where: str = 'network file') -> torch.nn.Module:
    if not isinstance(data, dict) or not {'class_name', 'init_kwargs', 'state_dict'} <= set(data):
        raise ValueError(f'{where}: expected a module entry with class_name, init_kwargs and state_dict')
    util.check_class_name(data, NETWORK_CLASSES, where)
    class_name = data['class_name']
    try:
        cls = util.get_obj_by_name(class_name)
    except (ValueError, ImportError) as err:
        raise ValueError(f'{where}: unknown class "{class_name}" ({err})') from None
    if not (isinstance(cls, type) and getattr(cls, '_persistent', False)):
        raise ValueError(f'{where}: "{class_name}" is not a persistent network class')
    init_kwargs = _from_plain(data['init_kwargs'])
    if not isinstance(init_kwargs, dict):
        raise ValueError(f'{where}: init_kwargs is a {type(init_kwargs).__name__}, expected a dict')
    try:
        check_init_kwargs(cls, init_kwargs, data['state_dict'], where)
        module = cls(**init_kwargs)
    except TypeError as err:
        raise ValueError(f'{where}: cannot construct "{class_name}" from the stored arguments ({err})') from None
    result = module.load_state_dict(data['state_dict'], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f'{where}: "{class_name}" state does not match the class '
                         f'(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})')
    return module.eval().requires_grad_(False)

def _large_ints(value: Any, path: str) -> list[tuple[str, int]]:
    """(dotted path, value) of every integer above MAX_INIT_INT in nested init_kwargs."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _large_ints(v, f'{path}.{k}')]
    if isinstance(value, (list, tuple)):
        return [found for i, v in enumerate(value) for found in _large_ints(v, f'{path}[{i}]')]
    return [(path, value)] if isinstance(value, int) and abs(value) > MAX_INIT_INT else []

def _tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))

def check_init_kwargs(cls: type, init_kwargs: dict, state_dict: Any, where: str) -> None:
    """Bound what `cls(**init_kwargs)`, asked for by a file, would allocate, before allocating
    anything: every integer in init_kwargs at most MAX_INIT_INT (they size layers and loops),
    then a construction with fake tensors (shapes only, no memory) whose state must have the
    shapes the file stores, and whose tensors may exceed the stored ones by at most
    MAX_UNSTORED_BYTES. Any violation is a ValueError naming the field and the limit."""
    from torch._subclasses.fake_tensor import FakeTensorMode   # pylint: disable=import-outside-toplevel
    large = _large_ints(init_kwargs, 'init_kwargs')
    if large:
        path, value = large[0]
        raise ValueError(f'{where}: {path}={value} is above the limit {MAX_INIT_INT} for integers in a network file')
    if not isinstance(state_dict, dict):
        raise ValueError(f'{where}: state_dict is a {type(state_dict).__name__}, expected a dict of tensors')
    try:
        with FakeTensorMode():
            fake = cls(**init_kwargs)
    except (TypeError, ValueError):
        raise   # The class's own complaint about its arguments, as the real construction would give it.
    except Exception as err:   # An operation that fake tensors do not support: refuse rather than allocate blindly.
        raise ValueError(f'{where}: cannot check the sizes init_kwargs ask for ({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ""})') from None
    differ = [f'{name} of shape {list(tensor.shape)}, the file stores {list(state_dict[name].shape)}'
              for name, tensor in fake.state_dict().items()
              if isinstance(state_dict.get(name), torch.Tensor) and state_dict[name].shape != tensor.shape]
    if differ:
        more = f' (and {len(differ) - 3} more tensors)' if len(differ) > 3 else ''
        raise ValueError(f'{where}: init_kwargs make {"; ".join(differ[:3])}{more}')
    needed_bytes = _tensor_bytes(fake.parameters()) + _tensor_bytes(fake.buffers())
    stored_bytes = _tensor_bytes(state_dict.values())
    if needed_bytes > stored_bytes + MAX_UNSTORED_BYTES:
        raise ValueError(f'{where}: init_kwargs ask for {needed_bytes / 2**30:.3g} GiB of tensors; the limit is what the file '
                         f'stores ({stored_bytes / 2**30:.3g} GiB) plus {MAX_UNSTORED_BYTES / 2**30:.3g} GiB')

#----------------------------------------------------------------------------

def save_network(path: str, **entries: Any) -> None:
    """Write a network file atomically. Modules must be persistent; other values plain data."""
    data = dict(format=FORMAT_NAME, version=FORMAT_VERSION)
    for name, value in entries.items():
        data[name] = module_to_data(value) if isinstance(value, torch.nn.Module) else _to_plain(value)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    util.atomic_write(path, buffer.getvalue())

def _load_error_reason(err: Exception) -> str:
    """The cause in torch.load's error, without its advice to retry with weights_only=False
    (which would execute code from the file)."""
    paragraphs = re.split(r'\n\s*\n', str(err))    # torch puts its advice in paragraphs of their own.
    text = ' '.join(p for p in paragraphs if 'weights_only' not in p and 'Weights only load failed' not in p)
    reason = ' '.join(text.replace('WeightsUnpickler error:', '').split())
    return f'{type(err).__name__}: {reason[:200]}' if reason else type(err).__name__

def load_plain_data(f: Any, where: str, what: str) -> Any:
    """torch.load(weights_only=True) of a file of tensors and plain data onto the CPU, never
    executing code from it. A file it refuses is a ValueError: '<where>: not a readable <what>
    (<cause>)'."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')     # torch warns about pickle protocols of files it then refuses.
            return torch.load(f, map_location='cpu', weights_only=True)
    except Exception as err:
        raise ValueError(f'{where}: not a readable {what} ({_load_error_reason(err)})') from None

def load_network(f: Any, where: str | None = None) -> dict:
    """Load a network file (path or binary file object) without executing any code from it.
    Returns an EasyDict of rebuilt modules (eval mode, no grad, CPU) and plain data."""
    if where is None:
        where = f if isinstance(f, (str, os.PathLike)) else getattr(f, 'name', 'network file')
    return network_from_data(load_plain_data(f, where, 'network file'), where)

def is_network_data(data: Any) -> bool:
    return isinstance(data, dict) and data.get('format') == FORMAT_NAME

def network_from_data(data: Any, where: str) -> dict:
    """The modules and plain data of a loaded network file (see load_network)."""
    if not is_network_data(data):
        raise ValueError(f'{where}: not a network file of this codebase (no "{FORMAT_NAME}" header)')
    if data.get('version') != FORMAT_VERSION:
        raise ValueError(f'{where}: network file version {data.get("version")} is not supported (expected {FORMAT_VERSION})')
    result = util.EasyDict()
    for name, value in data.items():
        if name in ('format', 'version'):
            continue
        if isinstance(value, dict) and 'class_name' in value and 'state_dict' in value:
            result[name] = module_from_data(value, where=f'{where}: {name}')
        else:
            result[name] = _from_plain(value)
    return result

#----------------------------------------------------------------------------
