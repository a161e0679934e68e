"""The files of a training run that are not images: their names, run directories (numbering,
finding the run that --resume=latest/auto continues), the exact-resume checkpoint (save and
load, symmetric), the RNG state it carries, starting from a network file, and keeping a run
directory whole across kills, restarts and full disks.

A resume checkpoint `resume-KKKKKK.pt` is a torch file of plain data (read back with
torch.load(weights_only=True)): format and version, the run's state (RunState: its id, seed,
batch size, processes and counters of images, ticks, batches and seconds), the state dicts
of G, D, G_ema, the augment pipe, both optimisers and the loss, ADA's pending statistics, the
kept training statistics and the global RNG states. Network snapshots
(`network-snapshot-KKKKKK.pkl`) are torch_utils/persistence.py's files.
"""

import contextlib
import dataclasses
import errno
import io
import json
import os
import random
import re
import uuid
from typing import Callable

import numpy as np
import torch

import dnnlib
import networks
from torch_utils import misc
from torch_utils import persistence

RESUME_STATE_FORMAT = 'fpa-gan-resume'
RESUME_STATE_VERSION = 1

# The name of the exact-resume checkpoints a run writes (KKKKKK = kimg).
RESUME_STATE_RE = re.compile(r'resume-(\d+)\.pt')
RUN_DIR_RE = re.compile(r'^(\d+)-')

#----------------------------------------------------------------------------
# File names inside a run directory.

def snapshot_name(kind: str, cur_nimg: int) -> str:
    """'network-snapshot' -> network-snapshot-000123.pkl, 'resume' -> resume-000123.pt,
    'fakes' / 'paint' -> fakes000123.png / paint000123.png (kimg, zero-padded to 6 digits)."""
    kimg = cur_nimg // 1000
    return {'network-snapshot': f'network-snapshot-{kimg:06d}.pkl', 'resume': f'resume-{kimg:06d}.pt',
            'fakes': f'fakes{kimg:06d}.png', 'paint': f'paint{kimg:06d}.png'}[kind]

def find_latest_resume_state(run_dir: str) -> str | None:
    """The newest resume checkpoint in `run_dir`, or None."""
    if not os.path.isdir(run_dir):
        return None
    found = [(int(m.group(1)), name) for name in os.listdir(run_dir) if (m := RESUME_STATE_RE.fullmatch(name))]
    return os.path.join(run_dir, max(found)[1]) if found else None

#----------------------------------------------------------------------------
# Run directories: numbering, continuing in the directory of a checkpoint.

def next_run_dir(outdir: str, desc: str) -> str:
    """<outdir>/<NNNNN>-<desc>, NNNNN = 1 + the highest numeric prefix present (upstream)."""
    prev = [int(m.group(1)) for name in (os.listdir(outdir) if os.path.isdir(outdir) else [])
            if (m := re.match(r'^(\d+)', name)) and os.path.isdir(os.path.join(outdir, name))]
    return os.path.join(outdir, f'{max(prev, default=-1) + 1:05d}-{desc}')

def reserve_run_dir(outdir: str, desc: str) -> str:
    """Create <outdir>/<NNNNN>-<desc> with a number that no other run directory has, also when
    several starts share the outdir: the number is claimed by creating the bare directory
    <outdir>/<NNNNN> exclusively (os.mkdir fails when it exists), checked against every other
    name that carries it, then renamed. A start that loses a race takes the next number."""
    os.makedirs(outdir, exist_ok=True)
    while True:
        path = next_run_dir(outdir, desc)
        number = os.path.basename(path).split('-', 1)[0]
        claim = os.path.join(outdir, number)
        try:
            os.mkdir(claim)
        except FileExistsError:
            continue
        if any(name != number and (m := re.match(r'^(\d+)', name)) and int(m.group(1)) == int(number) for name in os.listdir(outdir)):
            os.rmdir(claim)     # Another start named a directory with this number after our scan.
            continue
        os.rename(claim, path)
        return path

def check_resume_dir(resume_state: str, outdir: str) -> tuple[str, str | None]:
    """--resume=DIR/resume-KKKKKK.pt continues in DIR. Refuses (ValueError) when DIR holds a
    newer resume checkpoint (continuing from an older one would overwrite its files on the
    way). Returns (DIR, a line saying where the run continues when DIR is not in --outdir, or None)."""
    run_dir = os.path.dirname(os.path.abspath(resume_state))
    this = RESUME_STATE_RE.fullmatch(os.path.basename(resume_state))
    newer = sorted(name for name in os.listdir(run_dir) if (m := RESUME_STATE_RE.fullmatch(name))
                   and this is not None and int(m.group(1)) > int(this.group(1)))
    if newer:
        raise ValueError(f'--resume={resume_state}: {run_dir} holds the newer checkpoint {newer[-1]}, whose files this run '
                         'would overwrite on the way; resume from the newest checkpoint, or move the newer files away first')
    if os.path.abspath(outdir) not in (run_dir, os.path.dirname(run_dir)):
        return run_dir, f'Note: the run continues in {run_dir}, the directory of --resume, not in --outdir={outdir}'
    return run_dir, None

#----------------------------------------------------------------------------
# --resume=latest and --resume=auto: find the run in --outdir that this command continues.
#
# A run matches when its training_options.json names the same data (the path, resolved against
# the current directory), resolution, labels and generator (the whole G_kwargs: class and every
# option) as this command's config. Of the matching runs that hold a resume checkpoint, the
# highest-numbered wins. `latest` refuses when none matches; `auto` then starts a new run, so
# one command line serves a cluster job's first start and every requeue. Pure lookups on the
# file system: train.py calls them on rank 0 (torchrun) or in the parent before spawning
# (--gpus=N) and hands the result to every process.

RESUME_SEARCH_MODES = ('latest', 'auto')

def run_identity(c: dict) -> dict:
    """What must agree for one run to continue another (from training_loop kwargs)."""
    data = c['training_set_kwargs']
    return dict(
        data=os.path.realpath(os.path.expanduser(str(data['path']))),
        resolution=data.get('resolution'),
        use_labels=bool(data.get('use_labels', False)),
        G_kwargs=json.loads(json.dumps(c['G_kwargs'])),     # As training_options.json stores it.
    )

def read_run_identity(run_dir: str) -> dict | None:
    """run_identity of a run directory's training_options.json, or None when the file is
    missing, unreadable or lacks what run_identity needs (a neighbour's broken directory)."""
    try:
        with open(os.path.join(run_dir, 'training_options.json')) as f:
            return run_identity(json.load(f))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None

def find_matching_resume_state(outdir: str, c: dict) -> tuple[str | None, int, list[str]]:
    """(newest resume checkpoint of the highest-numbered matching run or None, number of runs
    with a checkpoint that did not match, names of the runs with a checkpoint skipped because
    their training_options.json is missing or corrupt)."""
    names = os.listdir(outdir) if os.path.isdir(outdir) else []
    runs = sorted(((int(m.group(1)), name) for name in names if (m := RUN_DIR_RE.match(name))), reverse=True)
    wanted = run_identity(c)
    num_other, broken = 0, []
    for _num, name in runs:
        run_dir = os.path.join(outdir, name)
        state = find_latest_resume_state(run_dir)
        if state is None:
            continue
        identity = read_run_identity(run_dir)
        if identity is None:
            broken.append(name)
        elif identity == wanted:
            return state, num_other, broken
        else:
            num_other += 1
    return None, num_other, broken

def find_run_to_resume(mode: str, outdir: str, c: dict) -> dnnlib.EasyDict:
    """EasyDict(resume = checkpoint path or None, message = one line for the user, error = None
    or the one-line reason to stop). `mode` is one of RESUME_SEARCH_MODES."""
    assert mode in RESUME_SEARCH_MODES
    state, num_other, broken = find_matching_resume_state(outdir, c)
    skipped = (f'; skipped {len(broken)} run{"s" if len(broken) != 1 else ""} whose training_options.json is missing or corrupt '
               f'({", ".join(broken[:3])}{" ..." if len(broken) > 3 else ""})') if broken else ''
    if state is not None:
        run_name = os.path.basename(os.path.dirname(state))
        return dnnlib.EasyDict(resume=state, error=None,
            message=f'--resume={mode}: continuing run {run_name} from {os.path.basename(state)} (same data, resolution and generator){skipped}')
    others = f' ({num_other} other run{"s" if num_other != 1 else ""} with a checkpoint: other data, resolution or generator options)' if num_other else ''
    others += skipped
    if mode == 'latest':
        return dnnlib.EasyDict(resume=None, message=None,
            error=f'--resume=latest: no run in --outdir={outdir} with a resume checkpoint (resume-KKKKKK.pt) matches this command{others}')
    return dnnlib.EasyDict(resume=None, error=None,
        message=f'--resume=auto: no run in --outdir={outdir} to continue{others}; starting a new run')

#----------------------------------------------------------------------------
# The global RNG states, as plain data.

def get_rng_states() -> dict:
    """torch, CUDA, numpy and python RNG states (loadable with torch.load(weights_only=True))."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        numpy=dict(name=np_name, keys=torch.from_numpy(np_keys.astype(np.int64)), pos=int(np_pos),
                   has_gauss=int(np_has_gauss), cached_gaussian=float(np_cached)),
        python=dict(version=py_version, state=list(py_state), gauss=py_gauss),
    )

def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states['torch'])
    if torch.cuda.is_available() and len(states['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states['cuda'])
    n = states['numpy']
    np.random.set_state((n['name'], n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['cached_gaussian']))
    p = states['python']
    random.setstate((p['version'], tuple(p['state']), p['gauss']))

#----------------------------------------------------------------------------
# The exact-resume checkpoint.

@dataclasses.dataclass
class RunState:
    """A run's counters and what continuing it needs besides the tensors (as EDM2's `state`):
    saved whole in every resume checkpoint (encode_resume_state) and restored whole from it
    (from_checkpoint). The loop advances it; nothing else of the run is carried across a resume."""
    run_id:          str                # Kept across resumes; pruning removes only this run's checkpoints.
    random_seed:     int                # The seed every random stream of the run derives from.
    batch_size:      int                # Total batch size the counters were made with,
    num_gpus:        int                # and the number of processes.
    cur_nimg:        int = 0            # Images trained on, all processes together.
    cur_tick:        int = 0            # The tick in progress (a checkpoint holds the one to continue with).
    batch_idx:       int = 0            # Training iterations done: the data stream's position and each step's seeds.
    elapsed_sec:     float = 0.0        # Training time of the run up to the end of the last tick, earlier processes included.
    last_checkpoint: str | None = None  # This run's newest resume checkpoint, the only one pruning removes (not stored: it is the file).

    STORED = ('run_id', 'random_seed', 'batch_size', 'num_gpus', 'cur_nimg', 'cur_tick', 'batch_idx', 'elapsed_sec')

    def stored(self) -> dict:
        """The fields a checkpoint holds, as plain data."""
        return {name: getattr(self, name) for name in self.STORED}

    @classmethod
    def from_checkpoint(cls, data: dict, path: str) -> 'RunState':
        """The state a checkpoint (load_resume_state) holds; it continues in `path`'s run. One
        written before run ids gets a new id and is never pruned."""
        has_id = data.get('run_id') is not None
        fields = {name: data[name] for name in cls.STORED if name != 'run_id'}
        return cls(**fields, run_id=data['run_id'] if has_id else new_run_id(), last_checkpoint=path if has_id else None)

def encode_resume_state(
    state:      RunState,               # The counters as the resumed run starts (cur_tick = the tick to continue with).
    modules:    dict,                   # {'G': G, 'D': D, 'G_ema': G_ema, 'augment_pipe': pipe or None}.
    optimizers: dict,                   # {'G_opt': ..., 'D_opt': ...}.
    loss,                               # The loss (state_dict(): its running statistics).
    ada_pending: dict,                  # ADA statistics accumulated since its last adjustment.
    rng:        dict,                   # get_rng_states() at the end of the tick's training.
    stats_kept: dict,                   # The stats collector's kept() after the tick's log line.
) -> bytes:
    """The checkpoint as bytes (written after the tick's log line). Its layout (version 1) is
    flat: the state's stored fields beside the state dicts."""
    data = dict(format=RESUME_STATE_FORMAT, version=RESUME_STATE_VERSION, **state.stored(),
                **{name: None if module is None else module.state_dict() for name, module in modules.items()},
                **{name: opt.state_dict() for name, opt in optimizers.items()},
                loss=loss.state_dict(), ada_pending=ada_pending, rng=rng, stats_kept=stats_kept)
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()

class RunStopped(ValueError):
    """A training run that stops with one line and no traceback (train.py prints it)."""

class ResumeStateError(RunStopped):
    """A resume checkpoint that does not fit the run it is restored into (one line, no traceback)."""

# Counters of a checkpoint: name -> smallest value. All at most MAX_COUNTER (exact in a float64).
RESUME_COUNTERS = dict(cur_nimg=0, cur_tick=0, batch_idx=0, batch_size=1, num_gpus=1)
MAX_COUNTER = 2 ** 53

def load_resume_state(path: str) -> dict:
    """A checkpoint written by encode_resume_state, as plain data, after check_resume_state; a
    one-line ValueError otherwise."""
    state = persistence.load_plain_data(path, path, 'resume checkpoint')
    if not isinstance(state, dict) or state.get('format') != RESUME_STATE_FORMAT:
        raise ValueError(f'{path}: not a resume checkpoint of this codebase (expected a resume-KKKKKK.pt written by training)')
    if state.get('version') != RESUME_STATE_VERSION:
        raise ValueError(f'{path}: resume checkpoint version {state.get("version")} is not supported (expected {RESUME_STATE_VERSION})')
    problem = resume_state_problem(state)
    if problem is not None:
        raise ValueError(f'{path}: {problem}; the checkpoint is damaged or was not written by train.py')
    return state

def resume_state_problem(state: dict) -> str | None:
    """What is missing or out of range in a loaded checkpoint (the entries, the counters, the
    optimiser states and the RNG states restore_resume_state uses), or None."""
    for name in ('G', 'D', 'G_ema', 'G_opt', 'D_opt', 'rng', 'ada_pending'):
        if not isinstance(state.get(name), dict):
            return f'"{name}" is {"missing" if name not in state else f"a {type(state[name]).__name__}"}, expected a dict'
    if not isinstance(state.get('loss', state.get('pl_mean')), (dict, torch.Tensor)):
        return '"loss" is missing or not a dict'
    for name, lowest in RESUME_COUNTERS.items():
        value = state.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value <= MAX_COUNTER:
            return f'counter {name}={value!r} is not an integer in [{lowest}, {MAX_COUNTER}]'
    elapsed = state.get('elapsed_sec')
    if not isinstance(elapsed, (int, float)) or not 0 <= elapsed < float('inf'):
        return f'elapsed_sec={elapsed!r} is not a finite non-negative number'
    for name in ('G_opt', 'D_opt'):
        groups = state[name].get('param_groups')
        if not isinstance(state[name].get('state'), dict) or not isinstance(groups, list) or not groups \
                or not all(isinstance(g, dict) and isinstance(g.get('params'), list) for g in groups):
            return f'optimiser state "{name}" has no parameter groups'
    return _rng_problem(state['rng'])

def _rng_problem(rng: dict) -> str | None:
    """What get_rng_states' structure lacks in `rng`, or None (checked before anything is set)."""
    torch_state, n, p = rng.get('torch'), rng.get('numpy'), rng.get('python')
    expected = torch.get_rng_state()
    if not isinstance(torch_state, torch.Tensor) or torch_state.dtype != expected.dtype or torch_state.shape != expected.shape:
        return f'the torch RNG state is not a {expected.dtype} tensor of shape {list(expected.shape)}'
    if not isinstance(rng.get('cuda'), list) or not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in rng['cuda']):
        return 'the CUDA RNG states are not a list of uint8 tensors'
    if not isinstance(n, dict) or n.get('name') != 'MT19937' or not isinstance(n.get('keys'), torch.Tensor) or n['keys'].shape != (624,) \
            or not all(isinstance(n.get(k), t) for k, t in (('pos', int), ('has_gauss', int), ('cached_gaussian', float))):
        return 'the numpy RNG state is not an MT19937 state of 624 keys'
    if not isinstance(p, dict) or not isinstance(p.get('state'), list) or len(p['state']) != 625 \
            or not all(isinstance(x, int) for x in p['state']) or not isinstance(p.get('version'), int):
        return 'the python RNG state is not a list of 625 integers'
    return None

def load_module_state(module: torch.nn.Module, state_dict: dict, name: str, path: str) -> None:
    """One module's tensors from a checkpoint; a mismatch is a one-line ValueError naming both."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        detail = ' '.join(str(err).split())[:300]
        raise ValueError(f'{path}: {name} does not match this run ({detail}); was it written with other options?') from None

def restore_resume_state(state: dict, path: str, modules: dict, optimizers: dict, loss) -> None:
    """The inverse of encode_resume_state for the modules, optimisers, loss and RNGs (the
    counters: RunState.from_checkpoint; ADA's and the log's statistics: the loop)."""
    for name, module in modules.items():
        if module is not None and state.get(name) is not None:
            load_module_state(module, state[name], name, path)
    try:
        for name, opt in optimizers.items():
            opt.load_state_dict(state[name])
        loss.load_state_dict(state['loss'] if 'loss' in state else dict(pl_mean=state['pl_mean']))   # (Early checkpoints: pl_mean alone.)
        set_rng_states(state['rng'])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
        detail = ' '.join(str(err).split())[:200] or type(err).__name__
        raise ResumeStateError(f'{path}: cannot restore the optimiser, loss or RNG states ({detail}); was it written with other options?') from None

#----------------------------------------------------------------------------
# Starting from a network file (--resume=NETWORK.pkl, URL or name).

def copy_from_network_file(path: str, modules: dict[str, torch.nn.Module]) -> None:
    """Copy tensors by name into freshly built modules. Reads every kind networks.load_network
    reads (ours, reference FPA checkpoints, StyleGAN2-ADA/StyleGAN3 pickles; paths, URLs and
    upstream's named sources). A file of another class, resolution or channel count, or with a
    tensor of another shape, is a ValueError."""
    data = networks.load_network(path)
    for name, module in modules.items():
        src = data.get(name)
        if src is None:
            continue
        for attr in ('img_resolution', 'img_channels'):
            if hasattr(module, attr) and getattr(src, attr, None) != getattr(module, attr):
                raise ValueError(f'--resume={path}: {name} has {attr}={getattr(src, attr, None)}, this run needs {getattr(module, attr)}')
        if type(src) is not type(module):
            raise ValueError(f'--resume={path}: {name} is a {src.class_name}, this run trains a {module.class_name}')
        try:
            misc.copy_params_and_buffers(src, module, require_all=False)
        except ValueError as err:
            raise ValueError(f'--resume={path}: {name}: {err}; {matching_options(src, module)}') from None
        src_params = {n for n, _ in src.named_parameters()}
        if not any(n in src_params for n, _ in module.named_parameters()):
            raise ValueError(f'--resume={path}: no parameter of {name} matches this run\'s {module.class_name}; {matching_options(src, module)}')

def align_frozen_fpa(G: torch.nn.Module, G_ema: torch.nn.Module) -> None:
    """A frozen FPA (two-stage FPA/U-Net, train_fpa=False) is the network file's G_ema FPA, in G
    as in G_ema. G_ema averages G, so an FPA that differed between the two (a file's G and G_ema
    do) would drift in G_ema from the file's G_ema towards its G, a blend of two networks, while
    G's stayed fixed. Buffers outside the U-Net come from G_ema too (the EMA copies G's each step)."""
    if getattr(getattr(G, 'synthesis', None), 'train_fpa', True):
        return
    frozen = {id(tensor) for tensor in G.fpa_parameters() + G.fpa_buffers()}
    ema_tensors = dict(G_ema.named_parameters()) | dict(G_ema.named_buffers())
    with torch.no_grad():
        for name, tensor in [*G.named_parameters(), *G.named_buffers()]:
            if id(tensor) in frozen:
                tensor.copy_(ema_tensors[name])

# train.py options that shape G or D -> the value a built module has for it (None: not its option).
OPTION_VALUES = {
    '--cbase':         lambda module: module.init_kwargs.get('channel_base'),
    '--cmax':          lambda module: module.init_kwargs.get('channel_max'),
    '--map-depth':     lambda module: getattr(getattr(module, 'mapping', None), 'num_layers', None),
    '--fpa-steps':     lambda module: module.init_kwargs.get('num_steps'),
    '--fpa-vector-lr': lambda module: module.init_kwargs.get('vector_lr'),
}

def matching_options(src: torch.nn.Module, module: torch.nn.Module) -> str:
    """What would make this run's `module` take the tensors of `src` (same class): the train.py
    options whose constructor arguments differ, with the file's values; else the differing
    arguments themselves."""
    options = [f'{option}={value(src)}' for option, value in OPTION_VALUES.items() if value(src) is not None and value(src) != value(module)]
    if options:
        return f'to match the file: {" ".join(options)}'
    ours, theirs = dict(getattr(module, 'init_kwargs', {})), dict(getattr(src, 'init_kwargs', {}))
    differ = [f'{k}={theirs[k]!r}' for k in sorted(theirs) if k in ours and theirs[k] != ours[k]]
    return f'the file\'s {src.class_name} has {", ".join(differ[:6])}' if differ else 'another architecture'

#----------------------------------------------------------------------------
# Keeping a run directory whole across kills, restarts and full disks.

def new_run_id() -> str:
    """Recorded in every resume checkpoint a run writes; a resumed run keeps its checkpoint's."""
    return uuid.uuid4().hex[:16]

def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Delete the partial files (.tmp-*) that a kill during an atomic write left in the run
    directory. Called when the run starts or resumes, before it writes anything; returns
    their names."""
    names = sorted(name for name in os.listdir(run_dir) if name.startswith('.tmp-'))
    for name in names:
        os.remove(os.path.join(run_dir, name))
    return names

def _cut_jsonl(path: str, keep: Callable[[dict], bool]) -> int:
    """Rewrite a .jsonl log atomically with only the records `keep` accepts; a line that does
    not parse (cut short by a kill) goes too. Returns the number of lines dropped."""
    with open(path, 'rb') as f:
        lines = f.read().decode('utf-8', errors='replace').splitlines()
    kept = []
    for line in lines:
        try:
            if keep(json.loads(line)):
                kept.append(line)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    if len(kept) != len(lines):
        dnnlib.util.atomic_write(path, ''.join(line + '\n' for line in kept).encode('utf-8'))
    return len(lines) - len(kept)

def cut_stats_jsonl(path: str, next_tick: int) -> int:
    """On resume: keep only the lines of stats.jsonl for ticks before `next_tick` (the tick the
    checkpoint continues with), and no partial line, so that the resumed run's lines follow on
    exactly and the log equals an uninterrupted run's. Returns the number of lines dropped."""
    if not os.path.isfile(path):
        return 0
    return _cut_jsonl(path, lambda record: record['Progress/tick']['mean'] < next_tick)

TICK_LINE_RE = re.compile(r'tick\s+(\d+)\s')

def cut_log_txt(path: str, next_tick: int) -> int:
    """On resume, before the log is reopened: cut log.txt back to before its first progress
    line of tick `next_tick` or later (lines a killed run wrote after the checkpoint, which
    the resumed run writes again), in place. Returns the number of lines dropped."""
    if not os.path.isfile(path):
        return 0
    with open(path, 'rb') as f:
        lines = f.read().splitlines(keepends=True)
    for index, line in enumerate(lines):
        m = TICK_LINE_RE.match(line.decode('utf-8', errors='replace'))
        if m and int(m.group(1)) >= next_tick:
            with open(path, 'r+b') as f:
                f.truncate(sum(len(kept) for kept in lines[:index]))
            return len(lines) - index
    return 0

def cut_metric_jsonl(run_dir: str, state_path: str) -> int:
    """On resume: drop the lines of metric-*.jsonl that were written after the checkpoint
    `state_path` (timestamp after its modification time) for a snapshot the resumed run writes
    again (kimg at or after the checkpoint's), so that a tick repeated after a kill does not
    repeat its metric lines. Lines for earlier snapshots (e.g. calc_metrics.py run by hand
    meanwhile) stay. Returns the number of lines dropped."""
    written_at = os.path.getmtime(state_path)
    state_kimg = int(RESUME_STATE_RE.fullmatch(os.path.basename(state_path)).group(1))
    def keep(record: dict) -> bool:
        snapshot = re.fullmatch(r'network-snapshot-(\d+)\.pkl', os.path.basename(record.get('snapshot_pkl') or ''))
        return not (record['timestamp'] > written_at and snapshot is not None and int(snapshot.group(1)) >= state_kimg)
    return sum(_cut_jsonl(os.path.join(run_dir, name), keep) for name in sorted(os.listdir(run_dir))
               if name.startswith('metric-') and name.endswith('.jsonl'))

def write_resume_state(path: str, data: bytes, previous: str | None) -> str:
    """Write a checkpoint atomically, then remove `previous` (this run's last one: checkpoints
    hold optimiser states, so only the newest is kept; another run's are never touched).
    Returns `path`, the new previous."""
    with reporting_full_disk(path, previous):
        dnnlib.util.atomic_write(path, data)
    if previous is not None and os.path.isfile(previous) and not os.path.samefile(previous, path):
        os.remove(previous)
    return path

class DiskFullError(RunStopped):
    """No space left on the device while the run wrote one of its files (one line, no traceback)."""

def check_finite_weights(modules: dict, cur_nimg: int, last_state: str | None) -> None:
    """Stop the run (RunStopped) when a parameter or buffer of G, D or G_ema is NaN or
    infinite: every later snapshot would be broken, while the last checkpoint is intact."""
    for name, module in modules.items():
        if module is None:
            continue
        for tensor_name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                kept = f'the last good checkpoint {last_state} is kept' if last_state else 'no checkpoint was written yet'
                raise RunStopped(f'{name}.{tensor_name} became NaN or infinite at {cur_nimg / 1000:.1f} kimg; training stopped and '
                                 f'{kept} (lower learning rates --glr/--dlr, or more --gamma, may keep it finite)')

@contextlib.contextmanager
def reporting_full_disk(path: str, previous_state: str | None):
    """A full disk while writing `path` becomes a DiskFullError naming it and the checkpoint the
    run can continue from (atomic writes leave the previous files as they were)."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        intact = f'the previous checkpoint {previous_state} is intact' if previous_state else 'no earlier file was changed'
        raise DiskFullError(f'no space left on device writing {path}; {intact}') from None

#----------------------------------------------------------------------------
