"""Progress lines inside the training loop's long silent stretches.

The loop prints one status line per tick; before a tick completes (the first ticks of a
CPU run take minutes) and while the sample grid is generated, nothing would be printed.
`ProgressNotes` says how far such a stretch is, at most once every `interval_sec`.
"""

import time
from typing import Callable, Iterable, Iterator

#----------------------------------------------------------------------------

class ProgressNotes:
    """One line at most every `interval_sec` seconds of silence (rank 0's `say`)."""
    def __init__(self, say: Callable, interval_sec: float = 30):
        self.say = say
        self.interval_sec = interval_sec
        self.tick = None
        self.last_time = self.start_time = time.time()

    def _due(self) -> bool:
        return time.time() - self.last_time >= self.interval_sec

    def _note(self, line: str) -> None:
        self.say(line)
        self.last_time = time.time()

    def toward_tick(self, cur_tick: int, cur_nimg: int, tick_start_nimg: int, kimg_per_tick: float) -> None:
        """Called after every training step: how far the coming tick's status line is."""
        if cur_tick != self.tick:    # A new tick: its stretch starts now (the status line was just printed).
            self.tick, self.last_time, self.start_time = cur_tick, time.time(), time.time()
            return
        if self._due():
            done_kimg = (cur_nimg - tick_start_nimg) / 1e3
            self._note(f'  tick {cur_tick}: {done_kimg:.3f} of {kimg_per_tick:g} kimg ({cur_nimg - tick_start_nimg} images) '
                       f'in {time.time() - self.start_time:.0f} s')

    def iterate(self, items: Iterable, total: int, what: str) -> Iterator:
        """Yields `items`, saying 'what: i/total' when the silence grows long."""
        self.last_time = start_time = time.time()
        for index, item in enumerate(items):
            if self._due():
                self._note(f'  {what}: {index}/{total} in {time.time() - start_time:.0f} s')
            yield item

#----------------------------------------------------------------------------
