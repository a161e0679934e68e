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

def _decimal_numbers(text: str) -> list[str]:
    return re.findall(r'(?<![\w.])\d[\d,]*\.\d+(?![\w.])', text)

@pytest.mark.parametrize('section,end,results', [('### Benchmarks', '### On a GPU', 'bench/results.md'),
                                                 ('### On a GPU', '## Known differences', 'bench/results-gpu.md')])
def test_readme_benchmark_numbers_come_from_the_results_files(section, end, results):
    """Every figure in the README's benchmark tables is a figure of the results file that the
    benchmarks wrote (possibly rounded to the README's decimals), so the two cannot drift apart."""
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    with open(os.path.join(REPO, results), encoding='utf-8') as f:
        measured = [n.replace(',', '') for n in _decimal_numbers(f.read())]
    assert section in readme and end in readme, f'README sections "{section}" / "{end}" not found'
    table_rows = [line for line in readme[readme.index(section):readme.index(end)].splitlines() if line.startswith('|')]
    assert table_rows, f'no table under "{section}"'
    def found(number: str) -> bool:
        decimals = len(number.split('.')[1])
        value = float(number.replace(',', ''))
        return any(abs(round(float(m), decimals) - value) < 10 ** -(decimals + 3) for m in measured)
    missing = [(n, row[:60]) for row in table_rows for n in _decimal_numbers(row) if not found(n)]
    assert not missing, f'README figures not in {results}: {missing[:5]}'
