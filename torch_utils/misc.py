"""Helpers used across networks, training and tools: cached constants, shape asserts, the
--device resolution, the uint8 conversion of generated images, parameter/buffer copying by
name, and a module summary table."""

import re
from typing import Any, Iterable, Sequence

import torch

#----------------------------------------------------------------------------
# Cached constant tensors (e.g. filters), keyed by value, shape, dtype and device.

_constant_cache: dict = {}

def constant(value: Any, shape: Sequence[int] | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None, memory_format: torch.memory_format | None = None) -> torch.Tensor:
    value = torch.as_tensor(value) if not isinstance(value, torch.Tensor) else value
    shape = tuple(value.shape) if shape is None else tuple(shape)
    dtype = value.dtype if dtype is None else dtype
    device = torch.device('cpu') if device is None else torch.device(device)
    memory_format = torch.contiguous_format if memory_format is None else memory_format
    key = (value.cpu().numpy().tobytes(), tuple(value.shape), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = value.detach().to(dtype=dtype, device=device).broadcast_to(shape)
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------
# Shape asserts at module boundaries. `None` in the reference shape matches any size.

def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[int | None], name: str = 'tensor') -> None:
    if not isinstance(tensor, torch.Tensor):
        raise AssertionError(f'{name}: expected a tensor of shape {_fmt_shape(ref_shape)}, got {type(tensor).__name__}')
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'{name}: expected {len(ref_shape)} dimensions {_fmt_shape(ref_shape)}, got shape {list(tensor.shape)}')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor):
            ref_size = int(ref_size)
        if int(size) != int(ref_size):
            raise AssertionError(f'{name}: expected shape {_fmt_shape(ref_shape)}, got {list(tensor.shape)} (dimension {idx})')

def _fmt_shape(shape: Sequence[int | None]) -> str:
    return '[' + ', '.join('*' if s is None else str(int(s)) for s in shape) + ']'

#----------------------------------------------------------------------------
# Devices.

def resolve_device(name: str | torch.device = 'auto') -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else must name a usable torch device
    (one-line ValueError otherwise). Every script's --device goes through here."""
    if isinstance(name, torch.device):
        return name
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f'"{name}" is not a device (expected auto, cpu, cuda or cuda:N)') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'"{name}": CUDA is not available on this machine (use cpu or auto)')
    return device

def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module without tensors)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device('cpu')

def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output (float, about [-1, 1]) -> uint8 of the same layout, as StyleGAN2-ADA
    converts: x * 127.5 + 128, clamped to [0, 255], truncated. Metrics and saved pictures use it."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)

#----------------------------------------------------------------------------
# Parameters and buffers, in a deterministic order.

def named_params_and_buffers(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return list(module.named_parameters()) + list(module.named_buffers())

@torch.no_grad()
def copy_params_and_buffers(src_module: torch.nn.Module, dst_module: torch.nn.Module, require_all: bool = False) -> list[str]:
    """Copy every tensor of `src_module` into the tensor of the same name in `dst_module`.

    Returns the names of destination tensors that had no source. Names present in both with
    different shapes raise one ValueError listing them (with both shapes); nothing is copied then.
    """
    src_tensors = dict(named_params_and_buffers(src_module))
    dst_tensors = list(named_params_and_buffers(dst_module))
    missing = [name for name, _ in dst_tensors if name not in src_tensors]
    if require_all and missing:
        raise ValueError(f'copy_params_and_buffers: source has no tensor named "{missing[0]}"')
    mismatched = [f'{name} {list(src_tensors[name].shape)} vs {list(tensor.shape)}'
                  for name, tensor in dst_tensors if name in src_tensors and src_tensors[name].shape != tensor.shape]
    if mismatched:
        more = f' and {len(mismatched) - 4} more' if len(mismatched) > 4 else ''
        raise ValueError(f'copy_params_and_buffers: {len(mismatched)} tensors differ in shape (source vs destination): '
                         f'{"; ".join(mismatched[:4])}{more}')
    for name, tensor in dst_tensors:
        if name in src_tensors:
            tensor.copy_(src_tensors[name].detach()).requires_grad_(tensor.requires_grad)
    return missing

#----------------------------------------------------------------------------
# A table of every submodule with its parameter/buffer counts and output shapes.

def print_module_summary(module: torch.nn.Module, inputs: Sequence[Any], max_nesting: int = 3,
                         skip_redundant: bool = True, print_fn=print) -> Any:
    """Run `module(*inputs)` once with hooks on every submodule, print one row per submodule
    (parameters, buffers, output shape, dtype) and return the forward output."""
    assert isinstance(module, torch.nn.Module) and not isinstance(module, torch.jit.ScriptModule)
    entries = []
    nesting = [0]

    def pre_hook(_mod, _inputs):
        nesting[0] += 1

    def post_hook(mod, _inputs, outputs):
        nesting[0] -= 1
        if nesting[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            outputs = [t for t in outputs if isinstance(t, torch.Tensor)]
            entries.append((mod, outputs))

    hooks = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    hooks += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Attribute each tensor to the outermost module that owns it, once.
    seen = set()
    rows = []
    names = {mod: name for name, mod in module.named_modules()}
    for mod, outs in entries:
        params = [t for t in mod.parameters() if id(t) not in seen]
        buffers = [t for t in mod.buffers() if id(t) not in seen]
        seen.update(id(t) for t in params + buffers)
        if skip_redundant and not params and not buffers and not outs:
            continue
        name = names.get(mod, '?') or '<top-level>'
        rows.append([
            name,
            str(sum(t.numel() for t in params)) if params else '-',
            str(sum(t.numel() for t in buffers)) if buffers else '-',
            str(list(outs[0].shape)) if outs else '-',
            str(outs[0].dtype).replace('torch.', '') if outs else '-',
        ])
    header = ['Module', 'Parameters', 'Buffers', 'Output shape', 'Datatype']
    total_params = sum(t.numel() for t in module.parameters())
    total_buffers = sum(t.numel() for t in module.buffers())
    footer = ['Total', str(total_params), str(total_buffers), '-', '-']
    widths = [max(len(r[i]) for r in [header, footer] + rows) for i in range(len(header))]
    rule = ['-' * w for w in widths]
    print_fn()
    for row in [header, rule] + rows + [rule, footer]:
        print_fn('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))
    print_fn()
    return outputs

#----------------------------------------------------------------------------
# Multi-process consistency check: every rank must hold identical tensors.

def check_ddp_consistency(module: torch.nn.Module, ignore_regex: str | None = None) -> None:
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise RuntimeError(f'check_ddp_consistency: "{fullname}" differs between ranks')

#----------------------------------------------------------------------------
# Quiet iteration helper for counting parameters.

def count_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    params: Iterable[torch.Tensor] = module.parameters()
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)
