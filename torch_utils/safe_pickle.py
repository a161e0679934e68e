"""Reading foreign pickles and torch files as data, never running code from them.

Two kinds of file reach this module: torch files written by other code (the FPA authors'
reference checkpoints, which may hold an argparse Namespace or optimiser objects beside the
state dict) and StyleGAN2-ADA / StyleGAN3 network pickles. An ordinary unpickler resolves
every global the file names (a module path and an attribute) and calls it; upstream's pickles
use that to `exec` the source code they embed. `RestrictedUnpickler` instead resolves a global
only when it is on `ALLOWED_GLOBALS` (functions and classes that merely build tensors and
containers) or on `SAFE_CONSTRUCTORS` (our own stand-ins for the few upstream functions whose
results we need as data); any other global becomes an inert `UnknownGlobal` subclass named
after it, which only records what the file asked for.

Upstream's persistence records (`torch_utils.persistence._reconstruct_persistent_obj(meta)`,
meta = class name, constructor arguments inside the object state, and the full source of the
defining module) come back as `PersistentRecord`s: plain data. The embedded source is kept as
a string to read, never imported or executed.
"""

import _compat_pickle
import importlib
import io
import pickle
import warnings
from typing import Any

import torch

from dnnlib import util

#----------------------------------------------------------------------------

class UnknownGlobal:
    """Inert stand-in for a global that a file names but that is not allowed. Constructing,
    calling (REDUCE), or restoring state or items into it only records the arguments; no code
    of the named module is ever imported or run."""
    global_name = '?'           # 'module.name' as the file spells it.
    args = ()                   # Positional arguments of the call the file asked for.
    state = None                # What BUILD passed to __setstate__.

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args, obj.kwargs = args, kwargs
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):      # Dict-like objects (SETITEM/SETITEMS).
        vars(self).setdefault('items', {})[key] = value

    def append(self, value):                # List-like objects (APPEND/APPENDS).
        vars(self).setdefault('elements', []).append(value)

    def extend(self, values):
        for value in values:
            self.append(value)

    def __repr__(self):
        return f'<unknown global {self.global_name}>'

_unknown_classes: dict[str, type] = {}

def unknown_global(module: str, name: str) -> type:
    full_name = f'{module}.{name}'
    if full_name not in _unknown_classes:
        _unknown_classes[full_name] = type(f'Unknown[{full_name}]', (UnknownGlobal,), dict(global_name=full_name))
    return _unknown_classes[full_name]

def unknown_names(obj: Any, limit: int = 100_000) -> set[str]:
    """The names of the UnknownGlobals anywhere inside obj (containers, records, their state)."""
    found, stack, seen = set(), [obj], 0
    while stack and seen < limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, UnknownGlobal):
            found.add(item.global_name)
            stack += [item.args, item.state, vars(item).get('items'), vars(item).get('elements')]
        elif isinstance(item, type) and issubclass(item, UnknownGlobal):
            found.add(item.global_name)
        elif isinstance(item, PersistentRecord):
            stack.append(item.state)
        elif isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack += list(item)
    return found

#----------------------------------------------------------------------------

class PersistentRecord:
    """One object of upstream's `torch_utils.persistence`, as data: the class name, the
    persistence format version, the source text of the defining module (never executed), and
    the object's `__dict__` (for a module: `_parameters`, `_buffers`, `_modules`, `_init_args`,
    `_init_kwargs` and plain attributes)."""
    def __init__(self, class_name: str, version: int, module_src: str, state: dict):
        self.class_name = class_name
        self.version = version
        self.module_src = module_src
        self.state = state

    def __repr__(self):
        return f'<upstream persistent {self.class_name}>'

def _persistent_record(meta: Any) -> PersistentRecord:
    """Stands in for upstream's `_reconstruct_persistent_obj(meta)`."""
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError(f'persistent object record is a {type(meta).__name__}, expected a dict')
    class_name, module_src, state = meta.get('class_name'), meta.get('module_src'), meta.get('state')
    if meta.get('type') != 'class' or not isinstance(class_name, str) or not isinstance(module_src, str) or not isinstance(state, dict):
        raise pickle.UnpicklingError('malformed persistent object record (expected type "class", class_name, module_src and state)')
    return PersistentRecord(class_name=class_name, version=meta.get('version'), module_src=module_src, state=dict(state))

def _storage_from_bytes(data: Any) -> Any:
    """Stands in for `torch.storage._load_from_bytes`: a storage that a plain pickle holds as
    the bytes of a (legacy-format) torch.save, read with torch.load(weights_only=True)."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f'tensor storage is a {type(data).__name__}, expected bytes')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return torch.load(io.BytesIO(bytes(data)), map_location='cpu', weights_only=True)

def _latin1_encode(text: Any, encoding: str = 'utf-8') -> bytes:
    """Stands in for `_codecs.encode`, which protocol-2 pickles use to store bytes: only the
    Latin-1 round trip is allowed (other codecs are not data conversions we need)."""
    if not isinstance(text, str) or encoding.replace('-', '').lower() not in ('latin1', 'iso88591'):
        raise pickle.UnpicklingError(f'refusing _codecs.encode with encoding {encoding!r}')
    return text.encode('latin-1')

# Globals a file may really use, all of which only construct data. Storage classes are
# resolved by torch.load itself before find_class is consulted.
ALLOWED_GLOBALS = {
    'builtins':               ('object', 'set', 'frozenset', 'bytearray', 'complex', 'slice', 'range'),
    'collections':            ('OrderedDict',),
    'copyreg':                ('_reconstructor',),
    'torch':                  ('Size', 'device'),
    'torch._utils':           ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3', '_rebuild_parameter',
                               '_rebuild_parameter_with_state'),
    'torch._tensor':          ('_rebuild_from_type_v2',),
    'numpy':                  ('ndarray', 'dtype'),
    'numpy.core.multiarray':  ('_reconstruct', 'scalar'),
    'numpy._core.multiarray': ('_reconstruct', 'scalar'),
}

# Globals that resolve to our own data-only stand-ins (functions and the dict class of dnnlib).
SAFE_CONSTRUCTORS = {
    ('torch_utils.persistence', '_reconstruct_persistent_obj'): _persistent_record,
    ('torch.storage', '_load_from_bytes'):                       _storage_from_bytes,
    ('_codecs', 'encode'):                                       _latin1_encode,
    ('dnnlib.util', 'EasyDict'):                                 util.EasyDict,     # Other codebases' EasyDict: a dict.
    ('dnnlib', 'EasyDict'):                                      util.EasyDict,
}

_TORCH_DTYPE_NAMES = {name for name, value in vars(torch).items() if isinstance(value, torch.dtype)}

class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS, torch dtypes and SAFE_CONSTRUCTORS; everything else
    becomes an UnknownGlobal subclass named after it. Never imports a module the file names
    other than those of ALLOWED_GLOBALS."""
    def find_class(self, module, name):
        # Protocol-2 files use Python 2 names ('__builtin__', 'copy_reg'); map them as pickle does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in SAFE_CONSTRUCTORS:
            return SAFE_CONSTRUCTORS[(module, name)]
        if name in ALLOWED_GLOBALS.get(module, ()) or (module == 'torch' and name in _TORCH_DTYPE_NAMES):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    return getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                pass
        return unknown_global(module, name)

class _RestrictedPickleModule:
    """What torch.load(pickle_module=...) needs: an Unpickler class and load()."""
    Unpickler = RestrictedUnpickler
    __name__ = 'torch_utils.safe_pickle._RestrictedPickleModule'

    @staticmethod
    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()

#----------------------------------------------------------------------------

def _one_line(err: Exception) -> str:
    message = ' '.join(str(err).split()) or type(err).__name__
    return message[:200]

def _held_objects(obj: Any) -> list | None:
    """What the stand-ins of this module hold, for dnnlib.util.check_structure_size."""
    if isinstance(obj, UnknownGlobal):
        return [obj.args, obj.kwargs, obj.state, vars(obj).get('items'), vars(obj).get('elements')]
    if isinstance(obj, PersistentRecord):
        return [obj.state]
    return None

def check_loaded_size(obj: Any, where: str) -> Any:
    """obj, after dnnlib.util.check_structure_size has bounded its depth and number of values."""
    util.check_structure_size(obj, where, children=_held_objects)
    return obj

def safe_torch_load(data: bytes, where: str) -> Any:
    """torch.load without running code from the file: weights_only=True, else the restricted
    unpickler. ValueError naming `where` when it is not a readable torch file or its structure
    is beyond the bounds of dnnlib.util.check_structure_size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return check_loaded_size(torch.load(io.BytesIO(data), map_location='cpu', weights_only=True), where)
    except ValueError as err:
        if str(err).startswith(where):
            raise
    except Exception:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            obj = torch.load(io.BytesIO(data), map_location='cpu', weights_only=False, pickle_module=_RestrictedPickleModule)
    except Exception as err:
        # The restricted unpickler's error says what is wrong with the bytes; torch's weights_only
        # error would advise weights_only=False, which this codebase never does.
        raise ValueError(f'{where}: not a readable PyTorch file ({_one_line(err)})') from None
    return check_loaded_size(obj, where)

def safe_pickle_load(data: bytes, where: str) -> Any:
    """A plain pickle (e.g. a StyleGAN2-ADA network pickle) through RestrictedUnpickler.
    ValueError naming `where` for a truncated or malformed file, or one whose structure is
    beyond the bounds of dnnlib.util.check_structure_size."""
    def refuse_persistent_id(pid):
        raise pickle.UnpicklingError('persistent ids are not supported in a plain pickle')
    unpickler = RestrictedUnpickler(io.BytesIO(data))
    unpickler.persistent_load = refuse_persistent_id
    try:
        obj = unpickler.load()
    except Exception as err:
        if isinstance(err, EOFError) or 'truncated' in str(err):
            raise ValueError(f'{where}: truncated pickle (the file ends before the data does)') from None
        raise ValueError(f'{where}: not a readable pickle ({_one_line(err)})') from None
    return check_loaded_size(obj, where)

def is_zip(data: bytes) -> bool:
    return data[:4] == b'PK\x03\x04'

#----------------------------------------------------------------------------
