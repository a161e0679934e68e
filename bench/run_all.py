"""Run every benchmark in bench/ and collect their tables into one markdown file.

Each bench/bench_*.py prints markdown tables whose rows compare variants measured side by
side in one run (ratios), plus absolute figures for this machine. This script runs them one
after another (never in parallel, so they do not disturb each other) and writes their tables,
with the date and the machine on top, into bench/results.md: it replaces the section between
that file's markers for the device (`<!-- BEGIN run_all device=cpu -->` ... `<!-- END ... -->`)
and keeps everything else there (dated runs recorded by hand).

    python bench/run_all.py [--quick] [--only NAME[,NAME...]]    # the CPU section of bench/results.md
    python bench/run_all.py --device=cuda                         # its GPU section
    python bench/run_all.py --out=DIR/results.md                  # a file of its own instead

--device is passed to every benchmark: each runs its device-side work there (data loading,
the CPU-only half of bench_data.py, stays on the CPU).
"""

import datetime
import os
import platform
import subprocess
import sys
import time

import click
import psutil
import torch

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    mem_gib = psutil.virtual_memory().total / 2**30
    return (f'{cpu}, {psutil.cpu_count(logical=True)} logical cores, {mem_gib:.0f} GiB, {gpu}; '
            f'Python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads')

@click.command()
@click.option('--quick', is_flag=True, help='Pass --quick to every benchmark (smaller sizes).')
@click.option('--only', default=None, help='Comma-separated benchmark names (e.g. painter,ops).')
@click.option('--device', default='cpu', show_default=True, help='cpu or cuda, passed to every benchmark.')
@click.option('--out', default=None, help='Markdown file of its own to write [default: the device\'s section of bench/results.md].')
@click.option('--timeout', 'timeout_s', type=int, default=None, help='Seconds each benchmark may take before it is stopped (and reported as such).')
def main(quick, only, device, out, timeout_s):
    section_of = None if out else os.path.join(BENCH_DIR, 'results.md')
    out = out or section_of
    if section_of:
        read_section(section_of, device) # Fails before any benchmark runs if the markers are missing.
    names = sorted(f[len('bench_'):-3] for f in os.listdir(BENCH_DIR) if f.startswith('bench_') and f.endswith('.py'))
    if only:
        wanted = only.split(',')
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise click.BadParameter(f'unknown benchmark(s) {", ".join(unknown)}; available: {", ".join(names)}', param_hint='--only')
        names = list(dict.fromkeys(wanted)) # In the order given: the most wanted first.
    lines = ([] if section_of else ['# Benchmark results', '']) + [
             f'Measured {datetime.date.today().isoformat()} on: {machine_description()}.', '',
             'Ratios come from variants timed side by side in the same run; absolute figures hold for this machine only.', '']
    failures = []
    for name in names:
        cmd = [sys.executable, os.path.join(BENCH_DIR, f'bench_{name}.py'), f'--device={device}'] + (['--quick'] if quick else [])
        print(f'[run_all] {" ".join(cmd[1:])}', file=sys.stderr, flush=True)
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(BENCH_DIR), timeout=timeout_s,
                                  env=dict(os.environ, PYTHONUNBUFFERED='1'))
            status, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as err:
            status, stdout, stderr = f'stopped after {timeout_s} s', _text(err.stdout), _text(err.stderr)
        lines += [f'{"###" if section_of else "##"} {" ".join(os.path.basename(c) for c in cmd[1:])} ({time.time() - t0:.0f} s)', '']
        if status != 0:
            failures.append(name)
            tail = '\n'.join(stderr.strip().splitlines()[-15:]) or '(no output on stderr)'
            lines += [f'FAILED ({status if isinstance(status, str) else f"exit {status}"}). Output so far, then the end of stderr:', '',
                      stdout.strip(), '', '```', tail, '```', '']
        else:
            lines += [stdout.strip(), '']
        # After every benchmark: a run stopped from outside keeps what it measured.
        text = '\n'.join(lines) + '\n'
        if section_of:
            before, _, after = read_section(section_of, device)
            text = before + text + after
        with open(out + '.tmp', 'w') as f:
            f.write(text)
        os.replace(out + '.tmp', out)
    print(f'[run_all] wrote {out}', file=sys.stderr)
    if failures:
        raise click.ClickException(f'benchmarks failed: {", ".join(failures)} (see {out})')

def read_section(path: str, device: str) -> tuple[str, str, str]:
    """Split `path` into (text up to and including the BEGIN marker of `device`, the section,
    the END marker and everything after it)."""
    begin, end = f'<!-- BEGIN run_all device={device} -->\n', f'<!-- END run_all device={device} -->'
    with open(path) as f:
        text = f.read()
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise click.ClickException(f'{path}: expected one "{begin.strip()}" line followed by one "{end}" line')
    head, rest = text.split(begin)
    section, tail = rest.split(end)
    return head + begin, section, end + tail

def _text(data) -> str:
    return data.decode('utf-8', 'replace') if isinstance(data, bytes) else (data or '')

if __name__ == '__main__':
    main()
