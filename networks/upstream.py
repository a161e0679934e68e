"""StyleGAN2-ADA and StyleGAN3 network pickles, imported as data into our classes.

An upstream network pickle is a dict {G, D, G_ema, augment_pipe, training_set_kwargs} whose
modules are records of upstream's `torch_utils.persistence`: a class name, the object's state
(parameters, buffers, child modules, constructor arguments) and the full source of the module
that defined the class. `torch_utils.safe_pickle` reads them as `PersistentRecord`s without
importing or executing anything; this module then rebuilds each top-level module from *our*
class with translated constructor arguments, and copies every tensor by name, checking that
the names and shapes are exactly those our module has.

What is supported (docs/legacy.md, "StyleGAN2-ADA and StyleGAN3 networks"):
    G, G_ema    StyleGAN2 generators: stylegan2-ada-pytorch (training/networks.py) and
                StyleGAN3's --cfg=stylegan2 (training/networks_stylegan2.py)
                -> networks.stylegan2.Generator;
                StyleGAN3's alias-free generators, --cfg=stylegan3-t and stylegan3-r
                (training/networks_stylegan3.py) -> networks.stylegan3.Generator, whose
                constructor arguments, defaults and tensor names are upstream's
    D           their discriminators -> networks.stylegan2.Discriminator
    augment_pipe  training/augment.py AugmentPipe (with its current p) -> training.augment.AugmentPipe
Any other class is refused in one line. Networks this codebase exported in upstream's
format (networks/export.py, `legacy.py --to=upstream`) come back as the classes they were:
the header of their embedded source names our module, and the class must be on the
persistence allow-list; their constructor arguments are ours and are not translated.

The two StyleGAN2 flavours differ only in defaults that a pickle does not store when the
training script left them at their defaults; FLAVOURS lists them and they are filled in
explicitly, because ours differ (e.g. our conv_clamp defaults to 256, stylegan2-ada's to None).
The source text is read for one thing only: which file (of upstream or our export) defined a class.
"""

import torch

import dnnlib
from networks import export
from torch_utils import persistence, safe_pickle

#----------------------------------------------------------------------------

# Upstream defaults that differ from ours, per defining file. Keys: where the argument lives.
FLAVOURS = {
    'stylegan2-ada': dnnlib.EasyDict(    # stylegan2-ada-pytorch, training/networks.py
        mapping   = dict(w_avg_beta=0.995),
        synthesis = dict(num_fp16_res=0, conv_clamp=None),
        D         = dict(num_fp16_res=0, conv_clamp=None),
    ),
    'stylegan3-stylegan2': dnnlib.EasyDict(   # stylegan3, training/networks_stylegan2.py
        mapping   = dict(w_avg_beta=0.998),
        synthesis = dict(num_fp16_res=4, conv_clamp=256, fused_modconv_default=True),
        D         = dict(num_fp16_res=4, conv_clamp=256),
    ),
}

# The flavour reported for networks exported by this codebase (networks/export.py).
EXPORT_FLAVOUR = 'exported by this codebase'

# Buffers of upstream's AugmentPipe that are constants derived from nothing stored (wavelet
# filters); ours computes the same filters under other names, as non-persistent buffers.
AUGMENT_DERIVED_BUFFERS = ('Hz_geom', 'Hz_fbank')

# Limits on what a record may hold before anything is built from it.
MAX_RECORD_DEPTH = 32
MAX_RECORD_MODULES = 100_000

#----------------------------------------------------------------------------

def flavour_of(record: safe_pickle.PersistentRecord, where: str) -> str:
    """Which upstream file defined the record's class, from markers in its source text."""
    src = record.module_src
    if 'class SynthesisInput' in src:
        return 'stylegan3'
    if 'class SynthesisBlock' in src and 'class DiscriminatorBlock' in src:
        return 'stylegan3-stylegan2' if 'fused_modconv_default' in src else 'stylegan2-ada'
    raise ValueError(f'{where}: upstream class "{record.class_name}" from an unrecognised module is not supported '
                     '(expected StyleGAN2 or StyleGAN3 networks of stylegan2-ada-pytorch or StyleGAN3)')

def record_kwargs(record: safe_pickle.PersistentRecord, where: str) -> dict:
    """The constructor keyword arguments a record was built with (positional ones refused)."""
    args, kwargs = record.state.get('_init_args', ()), record.state.get('_init_kwargs', {})
    if args:
        raise ValueError(f'{where}: {record.class_name} was constructed with positional arguments, which cannot be mapped by name')
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f'{where}: {record.class_name} has no readable constructor arguments')
    return dict(kwargs)

def _module_state(obj, where: str) -> dict | None:
    """The __dict__ of a module in a pickle: a persistent record, or an ordinary torch module
    (an UnknownGlobal that recorded its state)."""
    if obj is None:
        return None
    state = obj.state if isinstance(obj, (safe_pickle.PersistentRecord, safe_pickle.UnknownGlobal)) else None
    if not isinstance(state, dict):
        raise ValueError(f'{where}: a child module is a {type(obj).__name__}, expected a module record')
    return state

def record_tensors(record: safe_pickle.PersistentRecord, where: str) -> dict[str, torch.Tensor]:
    """The state dict of a record tree: parameters and persistent buffers by dotted name."""
    tensors, stack, count = {}, [('', record.state, 0)], 0
    while stack:
        prefix, state, depth = stack.pop()
        count += 1
        if depth > MAX_RECORD_DEPTH or count > MAX_RECORD_MODULES:
            raise ValueError(f'{where}: module tree deeper than {MAX_RECORD_DEPTH} or larger than {MAX_RECORD_MODULES} modules')
        non_persistent = state.get('_non_persistent_buffers_set') or set()
        if not isinstance(non_persistent, (set, frozenset, list, tuple)):
            raise ValueError(f'{where}: {prefix}_non_persistent_buffers_set is a {type(non_persistent).__name__}, expected a set of names')
        for group in ('_parameters', '_buffers', '_modules'):
            if not isinstance(state.get(group) or {}, dict):
                raise ValueError(f'{where}: {prefix}{group} is a {type(state.get(group)).__name__}, expected a dict')
        for group in ('_parameters', '_buffers'):
            for name, tensor in (state.get(group) or {}).items():
                if tensor is None or (group == '_buffers' and name in non_persistent):
                    continue
                if not isinstance(tensor, torch.Tensor):
                    raise ValueError(f'{where}: {prefix}{name} is a {type(tensor).__name__}, expected a tensor')
                tensors[prefix + name] = tensor.detach()
        for name, child in (state.get('_modules') or {}).items():
            child_state = _module_state(child, f'{where}: {prefix}{name}')
            if child_state is not None:
                stack.append((f'{prefix}{name}.', child_state, depth + 1))
    return tensors

#----------------------------------------------------------------------------
# Constructor arguments: upstream -> (our class, our arguments).

def _generator(kwargs: dict, record: safe_pickle.PersistentRecord, where: str) -> tuple[str, dict]:
    flavour = flavour_of(record, where)
    if flavour == 'stylegan3':      # Same constructor, same defaults.
        return 'networks.stylegan3.Generator', kwargs
    defaults = FLAVOURS[flavour]
    ours = {k: kwargs.pop(k) for k in ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels') if k in kwargs}
    ours['mapping_kwargs'] = {**defaults.mapping, **dict(kwargs.pop('mapping_kwargs', {}) or {})}
    synthesis = dict(kwargs.pop('synthesis_kwargs', {}) or {})     # stylegan2-ada nests them; StyleGAN3 passes them flat.
    ours.update({**defaults.synthesis, **synthesis, **kwargs})
    return 'networks.stylegan2.Generator', ours

def _discriminator(kwargs: dict, record: safe_pickle.PersistentRecord, where: str) -> tuple[str, dict]:
    flavour = flavour_of(record, where)
    if flavour not in FLAVOURS:
        raise ValueError(f'{where}: a Discriminator from {flavour}\'s generator module is not supported')
    ours = {**FLAVOURS[flavour].D, **kwargs}
    block_kwargs = dict(ours.pop('block_kwargs', {}) or {})
    epilogue_kwargs = dict(ours.pop('epilogue_kwargs', {}) or {})
    if 'freeze_layers' in block_kwargs:                         # Ours takes Freeze-D at the top.
        ours['freeze_layers'] = block_kwargs.pop('freeze_layers')
    for key in ('mbstd_group_size', 'mbstd_num_channels'):      # And the minibatch-std options.
        if key in epilogue_kwargs:
            ours[key] = epilogue_kwargs.pop(key)
    ours.update(block_kwargs=block_kwargs, epilogue_kwargs=epilogue_kwargs)
    return 'networks.stylegan2.Discriminator', ours

def _augment_pipe(kwargs: dict, record: safe_pickle.PersistentRecord, where: str) -> tuple[str, dict]:
    del record, where
    return 'training.augment.AugmentPipe', kwargs

# Upstream class name (top level) -> its translation (kwargs, record, where) -> (our class, our kwargs).
TOP_LEVEL_CLASSES = {
    'Generator':     _generator,
    'Discriminator': _discriminator,
    'AugmentPipe':   _augment_pipe,
}

#----------------------------------------------------------------------------

def _construct(class_name: str, kwargs: dict, tensors: dict, where: str) -> torch.nn.Module:
    """Our class from translated arguments, after persistence.check_init_kwargs has bounded what
    they ask for (integers, and a construction with fake tensors against the file's shapes)."""
    cls = dnnlib.util.get_obj_by_name(class_name)      # Our own table's names, never the file's.
    try:
        persistence.check_init_kwargs(cls, kwargs, tensors, where)
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        message = ' '.join(str(err).split())
        if message.startswith(where):   # Already our one line (persistence.check_init_kwargs).
            raise ValueError(message) from None
        raise ValueError(f'{where}: cannot build {class_name} from the stored arguments ({message[:200]})') from None

def _compare_states(ours: dict, theirs: dict, where: str, ignore: tuple = ()) -> None:
    """One line listing every name missing on either side and every shape that differs."""
    theirs = {k: v for k, v in theirs.items() if k not in ignore}
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours))
    shapes = [f'{k} {list(theirs[k].shape)} vs ours {list(ours[k].shape)}' for k in ours if k in theirs and ours[k].shape != theirs[k].shape]
    if missing or extra or shapes:
        parts = [f'missing in the file: {", ".join(missing[:4])}{" ..." if len(missing) > 4 else ""}' if missing else '',
                 f'not in ours: {", ".join(extra[:4])}{" ..." if len(extra) > 4 else ""}' if extra else '',
                 f'shapes differ: {"; ".join(shapes[:3])}{" ..." if len(shapes) > 3 else ""}' if shapes else '']
        raise ValueError(f'{where}: the tensors do not match the translated network ({"; ".join(p for p in parts if p)})')

def exported_class_of(record: safe_pickle.PersistentRecord, where: str) -> str | None:
    """Our class name for a record of a network exported by this codebase (networks/export.py:
    the header of the embedded source names our module), or None for upstream's own records.
    Only classes on the persistence allow-list are accepted; the source is never executed."""
    module_name = export.exported_module_name(record.module_src)
    if module_name is None:
        return None
    class_name = f'{module_name}.{record.class_name}'
    if class_name not in persistence.NETWORK_CLASSES:
        raise ValueError(f'{where}: exported class "{class_name}" is not a network class of this codebase')
    return class_name

def convert_record(record: safe_pickle.PersistentRecord, where: str) -> torch.nn.Module:
    """One top-level upstream module -> our module (eval mode, no grad, CPU). Records of our own
    exports keep their constructor arguments; upstream's are translated."""
    class_name = exported_class_of(record, where)
    kwargs = record_kwargs(record, where)
    ignore = ()
    if class_name is None:
        if record.class_name not in TOP_LEVEL_CLASSES:
            raise ValueError(f'{where}: upstream class "{record.class_name}" is not supported '
                             f'(supported: {", ".join(TOP_LEVEL_CLASSES)} of StyleGAN2-ADA / StyleGAN3)')
        class_name, kwargs = TOP_LEVEL_CLASSES[record.class_name](kwargs, record, where)
        ignore = AUGMENT_DERIVED_BUFFERS if record.class_name == 'AugmentPipe' else ()
    theirs = record_tensors(record, where)

    module = _construct(class_name, kwargs, theirs, where)
    _compare_states(module.state_dict(), theirs, where, ignore)
    state = {k: v.to(module.state_dict()[k].dtype) for k, v in theirs.items() if k not in ignore}
    module.load_state_dict(state, strict=True)
    return module.eval().requires_grad_(False)

def is_upstream_network(obj) -> bool:
    return isinstance(obj, dict) and any(isinstance(v, safe_pickle.PersistentRecord) for v in obj.values())

def convert_upstream_network(obj: dict, where: str) -> dnnlib.EasyDict:
    """EasyDict(G, D, G_ema, augment_pipe, training_set_kwargs, upstream_source) from the
    unpickled dict of an upstream network pickle."""
    result = dnnlib.EasyDict(G=None, D=None, G_ema=None, augment_pipe=None, training_set_kwargs=None)
    flavours = set()
    for name, value in obj.items():
        if name in ('G', 'D', 'G_ema', 'augment_pipe'):
            if value is None:
                continue
            if not isinstance(value, safe_pickle.PersistentRecord):
                raise ValueError(f'{where}: "{name}" is a {type(value).__name__}, expected an upstream module')
            result[name] = convert_record(value, f'{where}: {name}')
            if name != 'augment_pipe':
                flavours.add(EXPORT_FLAVOUR if exported_class_of(value, where) else flavour_of(value, where))
        elif name == 'training_set_kwargs':
            result[name] = _plain_data(value, f'{where}: {name}')
        # Other entries (e.g. 'progress' in some forks) are not used by anything here.
    if result.G_ema is None:
        raise ValueError(f'{where}: upstream network pickle without G_ema')
    result.upstream_source = dict(format='upstream network pickle', flavour=', '.join(sorted(flavours)),
                                  entries=sorted(k for k, v in obj.items() if v is not None))
    return result

def _plain_data(value, where: str, depth: int = 0):
    """Containers of numbers and strings only; anything else (a class stand-in) is refused."""
    if depth > MAX_RECORD_DEPTH:
        raise ValueError(f'{where}: nested deeper than {MAX_RECORD_DEPTH} levels')
    if isinstance(value, dict):
        return dnnlib.EasyDict({str(k): _plain_data(v, where, depth + 1) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [_plain_data(v, where, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f'{where}: holds a {type(value).__name__}, expected plain data')

#----------------------------------------------------------------------------
