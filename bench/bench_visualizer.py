"""The visualizer's latencies, measured in the browser: from the input event to the new image drawn.

    python bench/bench_visualizer.py [--quick] [--device=cpu] [--seeds=20] [--steps=64] [--threads=0,1]

Starts `visualizer.py` as a user would (its own process, torch's default threads) on the
paper's 64x64 FPA (the --cfg=fpa generator: T = 64, LSTM 1024, randomly initialised: the speed
does not depend on the weights), opens the page in headless Chromium and presses keys on the
real controls: arrow up in the seed field (a new seed: one request, all T frames in one
response), arrow left/right on the step slider (no request: the frames are cached in the page),
then uploads an image for a projection. The page records each latency with performance.now()
against the event's timeStamp (window.viz.stats); this script prints them side by side with the
targets, once per --threads value (visualizer.py --threads: 0 = torch's default, one per
core; 1 = its default), in one run. Needs Chromium, chromedriver and selenium (make browser, the viz-test extra).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import PIL.Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import dnnlib  # noqa: E402
import networks  # noqa: E402
from tests import browser  # noqa: E402
from torch_utils import persistence  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS_MS = dict(seedFirstFrame=150, seedAllFrames=300, step=16)

def start_server(networks_dir: str, device: str, threads: int) -> tuple[subprocess.Popen, str]:
    env = {key: value for key, value in os.environ.items() if key != 'OMP_NUM_THREADS'}   # --threads decides.
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'visualizer.py'), f'--networks={networks_dir}', '--port=0',
                             f'--device={device}', f'--threads={threads}'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
    for line in proc.stdout:
        match = re.search(r'(http://\S+)', line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f'visualizer.py exited without serving (exit code {proc.wait()})')

def summary(values: list[float]) -> str:
    v = np.array(values)
    return f'{np.median(v):.1f} | {np.percentile(v, 90):.1f} | {v.max():.1f} | {len(v)}'

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='Fewer repetitions.')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seeds', type=int, default=20, help='Seed changes timed.')
    parser.add_argument('--steps', type=int, default=64, help='Step changes timed.')
    parser.add_argument('--threads', default='0,1', help="visualizer.py --threads values, one measurement each (0 = torch's default).")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 5, 16
    reason = browser.missing()
    if reason:
        print(f'bench_visualizer: skipped: {reason}')
        return

    threads = [int(t) for t in args.threads.split(',')]
    with tempfile.TemporaryDirectory() as tmp:
        G = dnnlib.util.construct_class_by_name(**networks.generator_kwargs('fpa'), z_dim=512, c_dim=0, img_resolution=64, img_channels=3)
        persistence.save_network(os.path.join(tmp, 'fpa-64.pkl'), G_ema=G)
        target = os.path.join(tmp, 'target.png')
        PIL.Image.fromarray(np.random.RandomState(0).randint(0, 256, [96, 96, 3], dtype=np.uint8)).save(target)
        load_before = os.getloadavg()[0]
        results = {n: measure(tmp, target, args, n) for n in threads}
        load_after = os.getloadavg()[0]

    print(f'# Visualizer latencies in headless Chromium, paper 64x64 FPA (T=64, LSTM 1024), server on {args.device}, '
          f'load average {load_before:.1f} before, {load_after:.1f} after')
    print()
    for n, r in results.items():
        print(f'Server threads {n or "default"}: first page load (network loaded, first painting drawn) {r.first_load_s:.2f} s; '
              f'server-side render of the last seed {r.render_ms:.1f} ms')
    print()
    print('| from the input event to | server threads | target ms | median ms | p90 ms | max ms | count |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    rows = [('seed change: first frame drawn', 'seedFirstFrame', TARGETS_MS['seedFirstFrame']),
            ('seed change: all T frames cached, scrubbable', 'seedAllFrames', TARGETS_MS['seedAllFrames']),
            ('step change: stroke, partial, plots, channels drawn', 'step', TARGETS_MS['step']),
            ('projection start (Project clicked): first optimisation step shown', 'projectionStart', '-')]
    for label, key, target_ms in rows:
        for n, r in results.items():
            print(f'| {label} | {n or "default"} | {target_ms} | {summary(r.stats[key])} |')

def measure(networks_dir: str, target: str, args, threads: int) -> dnnlib.EasyDict:
    from selenium.webdriver.common.keys import Keys
    proc, url = start_server(networks_dir, args.device, threads)
    driver = browser.launch()
    try:
        start = time.perf_counter()
        driver.get(url)
        browser.wait_for(driver, 'window.viz.renders >= 1', timeout_s=120)
        first_load_s = time.perf_counter() - start
        driver.execute_script('window.viz.stats.seedFirstFrame = []; window.viz.stats.seedAllFrames = [];')
        seed = driver.find_element('id', 'seed')
        for i in range(args.seeds):
            seed.send_keys(Keys.ARROW_UP)
            browser.wait_for(driver, f'window.viz.stats.seedAllFrames.length >= {i + 1}', timeout_s=60)
            time.sleep(0.05)
        step = driver.find_element('id', 'step')
        for i in range(args.steps):
            step.send_keys(Keys.ARROW_LEFT if i % 2 == 0 else Keys.ARROW_RIGHT)
        browser.wait_for(driver, f'window.viz.stats.step.length >= {args.steps}')
        render_ms = driver.execute_script('return window.viz.data.header.render_ms')
        driver.find_element('id', 'upload').send_keys(target)
        driver.find_element('id', 'proj_steps').send_keys(Keys.CONTROL, 'a')
        driver.find_element('id', 'proj_steps').send_keys('1000')
        driver.find_element('id', 'project').click()
        browser.wait_for(driver, 'window.viz.stats.projectionStart.length >= 1', timeout_s=120)
        driver.find_element('id', 'cancel').click()
        stats = driver.execute_script('return window.viz.stats')
    finally:
        driver.quit()
        proc.terminate()
        proc.wait()
    return dnnlib.EasyDict(first_load_s=first_load_s, render_ms=render_ms, stats=stats)

if __name__ == '__main__':
    main()
