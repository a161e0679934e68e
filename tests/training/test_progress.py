"""training/progress.py: progress lines in the loop's long silent stretches, no more often
than the interval."""

from training import progress

class Clock:
    def __init__(self):
        self.now = 1000.0
    def __call__(self):
        return self.now

def test_lines_toward_the_tick_at_most_every_interval(monkeypatch):
    clock, lines = Clock(), []
    monkeypatch.setattr(progress.time, 'time', clock)
    notes = progress.ProgressNotes(lines.append, interval_sec=30)
    notes.toward_tick(cur_tick=1, cur_nimg=16, tick_start_nimg=16, kimg_per_tick=4)   # The tick's stretch starts.
    for step in range(1, 8):
        clock.now += 10
        notes.toward_tick(cur_tick=1, cur_nimg=16 + 32 * step, tick_start_nimg=16, kimg_per_tick=4)
    assert lines == ['  tick 1: 0.096 of 4 kimg (96 images) in 30 s', '  tick 1: 0.192 of 4 kimg (192 images) in 60 s']
    clock.now += 60
    notes.toward_tick(cur_tick=2, cur_nimg=4016, tick_start_nimg=4016, kimg_per_tick=4)  # The status line was just printed.
    assert len(lines) == 2

def test_iterate_yields_everything_and_notes_long_silences(monkeypatch):
    clock, lines = Clock(), []
    monkeypatch.setattr(progress.time, 'time', clock)
    notes = progress.ProgressNotes(lines.append, interval_sec=30)
    out = []
    for item in notes.iterate(range(5), 5, 'fakes_init.png batches'):
        out.append(item)
        clock.now += 20
    assert out == [0, 1, 2, 3, 4]
    assert lines == ['  fakes_init.png batches: 2/5 in 40 s', '  fakes_init.png batches: 4/5 in 80 s']
