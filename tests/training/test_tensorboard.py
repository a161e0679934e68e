"""TensorBoard events (the optional extra: pip install '.[tensorboard]'): rank 0 writes the
same scalars as stats.jsonl, under the same names, plus Metrics/<name> for each result."""

import json
import os

import pytest

from tests.training.tiny import loop_kwargs
from training import checkpoint
from training import training_loop as tl

event_accumulator = pytest.importorskip('tensorboard.backend.event_processing.event_accumulator',
                                        reason='tensorboard is not installed (the optional extra: pip install ".[tensorboard]")')

def test_tfevents_hold_the_stats_jsonl_tags(image_folder, tmp_path):
    run_dir = str(tmp_path / 'run')
    os.makedirs(run_dir)
    tl.training_loop(**loop_kwargs(image_folder, run_dir=run_dir))
    events = [name for name in os.listdir(run_dir) if name.startswith('events.out.tfevents.')]
    assert len(events) == 1, os.listdir(run_dir)
    acc = event_accumulator.EventAccumulator(run_dir)
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    jsonl_names = {name for tick in ticks for name in tick if name != 'timestamp'}
    assert jsonl_names <= tags, sorted(jsonl_names - tags)
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Progress/kimg', 'Timing/total_hours', 'Timing/total_days', 'Timing/sec_per_kimg'):
        assert name in tags, name
    values = [event.value for event in acc.Scalars('Progress/kimg')]
    assert values == pytest.approx([tick['Progress/kimg']['mean'] for tick in ticks], rel=1e-6), 'one value per tick, as in stats.jsonl'

class _Killed(Exception):
    """Stands in for kill -9 after a tick's log lines."""

def _kimg_scalars(run_dir) -> list[tuple[int, float]]:
    acc = event_accumulator.EventAccumulator(str(run_dir))
    acc.Reload()
    return [(event.step, round(event.value, 6)) for event in acc.Scalars('Progress/kimg')]

def test_a_resumed_run_shows_each_tick_once(image_folder, tmp_path):
    # Ticks of 1 kimg (TensorBoard's step is the whole kimg, as upstream's), a checkpoint every
    # 2 ticks; the run is killed after tick 3's logs and resumed from tick 2's checkpoint, so
    # tick 3 is written twice: TensorBoard must show it once, as in the uninterrupted run.
    schedule = dict(batch_size=64, batch_gpu=64, total_kimg=4, kimg_per_tick=1, network_snapshot_ticks=2)
    straight = tmp_path / 'straight'
    straight.mkdir()
    tl.training_loop(**loop_kwargs(image_folder, run_dir=str(straight), **schedule))
    split = tmp_path / 'split'
    split.mkdir()
    ticks_logged = []
    def progress_fn(_cur_kimg, _total_kimg):   # At the start, then after each tick's logs.
        ticks_logged.append(len(ticks_logged) - 1)
        if ticks_logged[-1] == 3:
            raise _Killed()
    with pytest.raises(_Killed):
        tl.training_loop(**loop_kwargs(image_folder, run_dir=str(split), progress_fn=progress_fn, **schedule))
    assert [step for step, _ in _kimg_scalars(split)] == [0, 1, 2, 3]
    tl.training_loop(**loop_kwargs(image_folder, run_dir=str(split), resume_state=checkpoint.find_latest_resume_state(str(split)),
                                   **schedule))
    assert len([name for name in os.listdir(split) if name.startswith('events.out.tfevents.')]) == 2
    assert _kimg_scalars(split) == _kimg_scalars(straight)
    assert [step for step, _ in _kimg_scalars(split)] == [0, 1, 2, 3, 4]
