"""The repository stands alone: no tracked file points at documents outside it."""

import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _tracked_text_files():
    try:
        names = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout')
    return [n for n in names if n.endswith(('.py', '.md', '.txt', '.toml', '.sh', '.cfg')) or n in ('Makefile', '.ci/run')]

def test_no_reference_to_files_outside_the_repository():
    outside = ['../' + 'shared', 'FPA' + '.md']        # Spelled apart so that this file does not match itself.
    found = []
    for name in _tracked_text_files():
        with open(os.path.join(REPO, name), encoding='utf-8', errors='replace') as f:
            text = f.read()
        found += [f'{name}: {word}' for word in outside if word in text]
    assert not found, f'files cite documents outside the repository: {found}'

RESULTS_FILES = ('bench/results.md', 'docs/results.md')     # The only homes of dated figures.

def _read(name: str) -> str:
    with open(os.path.join(REPO, name), encoding='utf-8', errors='replace') as f:
        return f.read()

def test_no_reference_to_an_issue_tracker():
    """The tracker is not in the repository: text says what was meant, not a ticket number."""
    pattern = re.compile(r'\bissues?\s*#?\d+', re.IGNORECASE)
    found = [f'{name}: {m.group(0)}' for name in _tracked_text_files() for m in pattern.finditer(_read(name))]
    assert not found, f'references to issue numbers: {found[:10]}'

def test_dated_figures_live_in_the_two_results_files():
    """A date marks a measurement; measurements are kept in bench/results.md and docs/results.md,
    and every other file states the decision and links there."""
    date = re.compile(r'(?<![\w-])20\d\d-[01]\d-[0-3]\d(?![\w-])')
    found = [f'{name}: {m.group(0)}' for name in _tracked_text_files() if name not in RESULTS_FILES
             for m in date.finditer(_read(name))]
    assert not found, f'dated figures outside {RESULTS_FILES}: {found[:10]}'

def test_readme_states_decisions_not_figures():
    """The README links to the results files; the only decimal numbers in it are versions."""
    readme = _read('README.md')
    for name in RESULTS_FILES:
        assert f']({name})' in readme, f'README does not link {name}'
    versions = re.compile(r'(?:torch|Python|tested:|,)\s*(?:>=\s*)?\d+\.\d+(?:\.\d+)?')
    numbers = re.findall(r'(?<![\w.])\d[\d,]*\.\d+(?![\w.])', versions.sub('', readme))
    assert not numbers, f'figures in the README (they belong in {RESULTS_FILES}): {numbers[:10]}'

@pytest.mark.parametrize('device', ['cpu', 'cuda'])
def test_run_all_finds_its_section_of_bench_results(device):
    """bench/run_all.py rewrites only its device's section of bench/results.md."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('run_all', os.path.join(REPO, 'bench', 'run_all.py'))
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    path = os.path.join(REPO, 'bench', 'results.md')
    before, section, after = run_all.read_section(path, device)
    assert before + section + after == _read('bench/results.md')
    assert section.strip(), f'the {device} section of bench/results.md is empty'
