"""The repository stands alone: no tracked file points at documents outside it."""

import os
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
