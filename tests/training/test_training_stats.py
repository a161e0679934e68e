"""torch_utils.training_stats (single process) and torch_utils.distributed.sync_gradients."""

import time

import numpy as np
import pytest
import torch

from torch_utils import distributed
from torch_utils import training_stats

@pytest.fixture(autouse=True)
def fresh_counters():
    training_stats.reset()
    yield
    training_stats.reset()

def test_collector_mean_std_num_match_numpy():
    rnd = np.random.RandomState(0)
    values = [rnd.randn(5), rnd.randn(3), rnd.randn(1)]
    collector = training_stats.Collector(regex='Loss/.*')
    for v in values:
        training_stats.report('Loss/x', torch.tensor(v))
    training_stats.report('Other/y', 1.0)
    collector.update()
    flat = np.concatenate(values)
    assert collector.names() == ['Loss/x']
    assert collector.num('Loss/x') == flat.size
    assert collector.mean('Loss/x') == pytest.approx(flat.mean(), rel=1e-12)
    assert collector.std('Loss/x') == pytest.approx(flat.std(), rel=1e-9)
    assert collector.as_dict() == {'Loss/x': dict(num=9, mean=collector.mean('Loss/x'), std=collector.std('Loss/x'))}

def test_collector_sees_only_growth_since_last_update():
    collector = training_stats.Collector(regex='a')
    training_stats.report('a', [1.0, 3.0])
    collector.update()
    assert collector.mean('a') == 2.0
    training_stats.report('a', [10.0])
    collector.update()
    assert (collector.num('a'), collector.mean('a')) == (1, 10.0)
    collector.update()   # Nothing new: keep_previous keeps the last values.
    assert collector.mean('a') == 10.0
    dropping = training_stats.Collector(regex='a', keep_previous=False)
    dropping.update()
    assert dropping.num('a') == 0 and np.isnan(dropping.mean('a'))

def test_report0_registers_the_name_without_values_on_other_ranks():
    training_stats.init_multiprocessing(rank=1, sync_device=None)
    try:
        training_stats.report0('b', 5.0)
    finally:
        training_stats.init_multiprocessing(rank=0, sync_device=None)
    collector = training_stats.Collector(regex='b')
    collector.update()
    assert 'b' in collector.names() and collector.num('b') == 0

def test_pending_moments_survive_a_restart():
    """What a resume checkpoint stores for the ADA statistics: values reported after the last
    update() count in the next update() of a new collector (a resumed process)."""
    collector = training_stats.Collector(regex='Loss/signs/real')
    training_stats.report('Loss/signs/real', [1.0, -1.0, 1.0])
    collector.update()
    training_stats.report('Loss/signs/real', [1.0, 1.0])
    pending = collector.pending()
    assert float(pending['Loss/signs/real'][0]) == 2

    training_stats.reset()   # A new process.
    resumed = training_stats.Collector(regex='Loss/signs/real')
    resumed.add_pending(pending)
    training_stats.report('Loss/signs/real', [-1.0])
    resumed.update()
    assert resumed.num('Loss/signs/real') == 3
    assert resumed.mean('Loss/signs/real') == pytest.approx(1 / 3)

# Values whose float64 sums round (a sum since the start, differenced, would not give them back).
ROUNDING = [[1e3 / 3], [0.1, 0.7, -0.3], [2 ** 0.5, 1e-3], [-5 / 7]]

def test_what_an_update_takes_does_not_depend_on_earlier_updates():
    """A resumed run collects from its resume point on: every update must give bitwise the
    figures of a collector that saw only the values since the previous update."""
    collector = training_stats.Collector(regex='a')
    training_stats.report('a', ROUNDING[0])
    collector.update()
    for v in ROUNDING[1:]:
        training_stats.report('a', v)
    collector.update()
    training_stats.reset()
    fresh = training_stats.Collector(regex='a')
    for v in ROUNDING[1:]:
        training_stats.report('a', v)
    fresh.update()
    assert collector.as_dict() == fresh.as_dict()

def test_pending_moments_resume_bitwise():
    """Pending moments from a checkpoint, then the values reported after it: bitwise the moments
    of the uninterrupted collector (the resume test of stats.jsonl depends on it)."""
    straight = training_stats.Collector(regex='a')
    training_stats.report('a', [12345.6789])
    straight.update()
    training_stats.report('a', ROUNDING[0])
    training_stats.report('a', ROUNDING[1])
    pending = straight.pending()
    for v in ROUNDING[2:]:
        training_stats.report('a', v)
    straight.update()
    training_stats.reset()
    resumed = training_stats.Collector(regex='a')
    resumed.add_pending(pending)
    for v in ROUNDING[2:]:
        training_stats.report('a', v)
    resumed.update()
    assert resumed.as_dict() == straight.as_dict()

#----------------------------------------------------------------------------

def test_kept_figures_survive_a_restart():
    """A statistic the tick after a resume does not report repeats its last figures, as it would
    in the same process (keep_previous)."""
    training_stats.reset()
    straight = training_stats.Collector(regex='.*')
    training_stats.report('Loss/D/reg', torch.tensor([0.5, 1.5, 2.0]))
    training_stats.report('Loss/G/loss', torch.tensor([3.0]))
    straight.update()
    kept = straight.kept()
    training_stats.report('Loss/G/loss', torch.tensor([4.0]))     # The next tick: no R1.
    straight.update()
    expected = straight.as_dict()
    assert expected['Loss/D/reg'] == dict(num=3, mean=pytest.approx(4 / 3), std=pytest.approx(np.std([0.5, 1.5, 2.0])))
    training_stats.reset()                                        # A new process, from the checkpoint.
    resumed = training_stats.Collector(regex='.*')
    resumed.restore_kept(kept)
    training_stats.report('Loss/G/loss', torch.tensor([4.0]))
    resumed.update()
    assert resumed.as_dict() == expected
    training_stats.reset()
    fresh = training_stats.Collector(regex='.*')
    training_stats.report('Loss/G/loss', torch.tensor([4.0]))
    fresh.update()
    assert 'Loss/D/reg' not in fresh.as_dict(), 'without the kept figures the statistic would be missing'

def test_sync_gradients_neutralises_and_counts_nonfinite_entries():
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2, 2))
    c = torch.nn.Parameter(torch.zeros(1))  # No gradient: skipped.
    a.grad = torch.tensor([1.0, float('nan'), float('inf')])
    b.grad = torch.tensor([[float('-inf'), 2.0], [3.0, 4.0]])
    count = distributed.sync_gradients([a, b, c])
    assert int(count) == 3
    assert torch.equal(a.grad, torch.tensor([1.0, 0.0, 1e5]))
    assert torch.equal(b.grad, torch.tensor([[-1e5, 2.0], [3.0, 4.0]]))
    assert c.grad is None

def test_sync_gradients_leaves_finite_gradients_alone():
    # The one-process CPU path checks a float64 sum per gradient; finite entries whose sum
    # overflows (float64 gradients near its maximum) must still be counted as finite.
    a = torch.nn.Parameter(torch.zeros(4))
    b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    a.grad = torch.randn(4)
    b.grad = torch.tensor([1e308, 1e308], dtype=torch.float64)
    grads = [a.grad.clone(), b.grad.clone()]
    count = distributed.sync_gradients([a, b])
    assert int(count) == 0
    assert torch.equal(a.grad, grads[0]) and torch.equal(b.grad, grads[1])

def test_phase_timer_reports_milliseconds_per_phase():
    training_stats.reset()
    collector = training_stats.Collector(regex='Timing/.*')
    timer = training_stats.PhaseTimer(torch.device('cpu'))
    for _ in range(2):
        timer.start('Dmain')
        time.sleep(0.02)
        assert timer.stop() >= 20
    timer.start('Greg')
    timer.stop()
    collector.update()
    assert collector.num('Timing/Dmain') == 2 and collector['Timing/Dmain'] >= 20
    assert collector.num('Timing/Greg') == 1 and collector['Timing/Greg'] < 20
    with pytest.raises(AssertionError, match='stop'):
        timer.stop()
