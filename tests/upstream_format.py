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
"""

import collections
import pickle

import torch

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
