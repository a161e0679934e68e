"""TensorBoard events (the optional extra: pip install '.[tensorboard]'): rank 0 writes the
same scalars as stats.jsonl, under the same names, plus Metrics/<name> for each result."""

import json
import os

import pytest

from tests.training.tiny import loop_kwargs
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
