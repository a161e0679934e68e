"""Training statistics: report scalars anywhere, collect them per tick, across processes.

`report(name, value)` adds the count, sum and sum of squares of `value`'s elements to every
live `Collector` whose regex matches `name` (kept on the value's device so that reporting never
waits for the GPU). A Collector's `update()` turns what was added since its last update into
mean and std, summing over all processes of a torch.distributed group. Each collector sums
from zero after every update, so a tick's figures depend on that tick's values alone and a
resumed run logs bitwise what an uninterrupted one logs (a running sum since the start,
differenced per tick, rounds differently once a resume restarts it). The loss reports under
StyleGAN2-ADA's names (`Loss/G/loss`, `Loss/signs/real`, ...); the loop collects them into
`stats.jsonl` once per tick, and the ADA heuristic reads `Loss/signs/real` every few steps
(Karras et al., "Training Generative Adversarial Networks with Limited Data", section 3).

Every process must report the same names (use `report0` for values that only rank 0 has)
and call `Collector.update()` at the same points, since `update()` is a collective call.
"""

import re
import time
import weakref
from typing import Any

import numpy as np
import torch

#----------------------------------------------------------------------------

_num_moments = 3                    # [count, sum, sum of squares].
_reduce_dtype = torch.float64       # Exact counts and stable sums.
_rank = 0                           # This process's rank, set by init_multiprocessing().
_sync_device = None                 # Device for all-reduce (CUDA for NCCL), None = single process.
_names: set[str] = set()            # Every name reported, with or without values.
_collectors: weakref.WeakSet = weakref.WeakSet()    # Live collectors, which receive the moments.

def init_multiprocessing(rank: int, sync_device: torch.device | None) -> None:
    """Declare this process's rank; `sync_device` is where moments are all-reduced
    (the process's CUDA device with NCCL, CPU with gloo; None = no all-reduce)."""
    global _rank, _sync_device
    _rank = rank
    _sync_device = sync_device

def reset() -> None:
    """Forget every name and collector (a new training run in the same process, e.g. in tests)."""
    _names.clear()
    _collectors.clear()

#----------------------------------------------------------------------------

def report(name: str, value: Any) -> Any:
    """Add the elements of `value` (tensor, number or list; may be empty) to statistic `name`.
    Returns `value` unchanged so that calls can be chained."""
    _names.add(name)
    elems = torch.as_tensor(value).detach()
    if elems.numel() == 0:
        return value
    elems = elems.flatten().to(_reduce_dtype)
    moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()])
    assert moments.ndim == 1 and moments.shape[0] == _num_moments
    for collector in list(_collectors):
        collector._add(name, moments) # pylint: disable=protected-access
    return value

def report0(name: str, value: Any) -> Any:
    """`report` on rank 0 only; the other ranks register the name with no values."""
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------

def _sync(sums: dict[str, dict[torch.device, torch.Tensor]], names: list[str]) -> list[tuple[str, torch.Tensor]]:
    """The moments `sums` holds for `names` (name -> device -> moments), summed over devices and
    (collectively) over processes."""
    if len(names) == 0:
        return []
    device = _sync_device if _sync_device is not None else torch.device('cpu')
    stack = []
    for name in names:
        total = torch.zeros([_num_moments], dtype=_reduce_dtype, device=device)
        for moments in sums.get(name, {}).values():
            total.add_(moments.to(device))
        stack.append(total)
    stack = torch.stack(stack)
    if _sync_device is not None and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.all_reduce(stack)
    stack = stack.cpu()
    return [(name, stack[idx]) for idx, name in enumerate(names)]

#----------------------------------------------------------------------------

class Collector:
    """Mean and std of every statistic whose name fully matches `regex`, over the values
    reported between the last two calls of `update()` (all processes together)."""

    def __init__(self,
        regex:          str = '.*',     # Statistics to collect.
        keep_previous:  bool = True,    # Keep a statistic's last values when nothing new was reported.
    ):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._sums: dict[str, dict[torch.device, torch.Tensor]] = {}  # Reported since the last update(), per device.
        self._moments: dict[str, torch.Tensor] = {}                    # What the last update() took.
        _collectors.add(self)

    def _add(self, name: str, moments: torch.Tensor) -> None:
        if self._regex.fullmatch(name):
            sums = self._sums.setdefault(name, {})
            if moments.device in sums:
                sums[moments.device].add_(moments)
            else:
                sums[moments.device] = moments.clone()

    def names(self) -> list[str]:
        """Matching names, sorted (the same order on every process)."""
        return sorted(name for name in _names | set(self._moments) if self._regex.fullmatch(name))

    def update(self) -> None:
        """Collective: take the moments reported since the last update."""
        if not self._keep_previous:
            self._moments.clear()
        for name, moments in _sync(self._sums, self.names()):
            if float(moments[0]) != 0:
                self._moments[name] = moments
        self._sums.clear()

    def pending(self) -> dict[str, torch.Tensor]:
        """Collective: the moments reported since the last update() and not yet taken, summed
        over processes. Stored in resume checkpoints so that a resumed run sees them too."""
        return {name: moments for name, moments in _sync(self._sums, self.names()) if float(moments[0]) != 0}

    def add_pending(self, pending: dict[str, torch.Tensor], device: torch.device = torch.device('cpu')) -> None:
        """Make the next update() include `pending` (from `pending()` of an earlier run). Call on
        every process; only rank 0 keeps it, since update() sums over processes. `device` is where
        the values are reported: they are then added to `pending` as to the earlier run's sums."""
        if _rank != 0:
            return
        for name, moments in pending.items():
            moments = torch.as_tensor(moments, dtype=_reduce_dtype).to(device, copy=True)
            self._sums.setdefault(name, {})[moments.device] = moments

    def num(self, name: str) -> int:
        moments = self._moments.get(name)
        return 0 if moments is None else int(moments[0])

    def mean(self, name: str) -> float:
        moments = self._moments.get(name)
        if moments is None or float(moments[0]) == 0:
            return float('nan')
        return float(moments[1] / moments[0])

    def std(self, name: str) -> float:
        moments = self._moments.get(name)
        if moments is None or float(moments[0]) == 0 or not np.isfinite(float(moments[1])):
            return float('nan')
        if int(moments[0]) == 1:
            return 0.0
        mean = float(moments[1] / moments[0])
        raw_var = float(moments[2] / moments[0])
        return float(np.sqrt(max(raw_var - mean ** 2, 0)))

    def kept(self) -> dict[str, torch.Tensor]:
        """What the last update() took, per name (all-process moments, float64 on the CPU): with
        keep_previous, what the next update() repeats for a name that is not reported again.
        Stored in resume checkpoints, so that a resumed run's first ticks repeat the same."""
        return {name: moments.detach().to('cpu', torch.float64, copy=True) for name, moments in self._moments.items()}

    def restore_kept(self, kept: dict[str, torch.Tensor]) -> None:
        """The inverse of kept(), on every process (update() leaves the same moments everywhere)."""
        self._moments = {name: torch.as_tensor(moments, dtype=_reduce_dtype).reshape([_num_moments]).clone()
                         for name, moments in kept.items()}

    def as_dict(self) -> dict[str, dict[str, float]]:
        """{name: {'num', 'mean', 'std'}} for the statistics that have values."""
        return {name: dict(num=self.num(name), mean=self.mean(name), std=self.std(name))
                for name in self.names() if name in self._moments}

    def __getitem__(self, name: str) -> float:
        return self.mean(name)

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------

class PhaseTimer:
    """Wall time of each training phase as `Timing/<phase>` in milliseconds (StyleGAN2-ADA's
    names: Timing/Gmain, Timing/Greg, Timing/Dmain, Timing/Dreg), on any device: the clock is
    read around the phase, after synchronising CUDA so that the phase's kernels are counted
    (upstream times the same span with CUDA events, on CUDA only). Every execution of a phase
    is reported, so a tick's figure is the mean over its steps.

        timer = PhaseTimer(device)
        timer.start(phase.name); ...the phase...; timer.stop()
    """
    def __init__(self, device: torch.device):
        self.cuda_device = device if torch.device(device).type == 'cuda' else None
        self.name = None
        self.start_time = 0.0

    def _sync(self) -> None:
        if self.cuda_device is not None:
            torch.cuda.synchronize(self.cuda_device)

    def start(self, name: str) -> None:
        assert self.name is None, f'PhaseTimer: {self.name} is still running'
        self._sync()
        self.name, self.start_time = name, time.perf_counter()

    def stop(self) -> float:
        """Report and return the phase's milliseconds."""
        assert self.name is not None, 'PhaseTimer: stop() without start()'
        self._sync()
        msec = (time.perf_counter() - self.start_time) * 1000
        report0(f'Timing/{self.name}', msec)
        self.name = None
        return msec

