"""The --help text of every script, kept current in docs/<script>-help.txt.

train.py's own test (tests/training/test_train_cli.py::test_help_is_documented) covers
docs/train-help.txt; this file covers the other scripts. After changing a script's options,
rewrite all eight files with:

    python -m tests.test_cli_help --write
"""

import importlib
import os
import sys

import pytest
from click.testing import CliRunner

DOCS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'docs')
REGENERATE = 'python -m tests.test_cli_help --write'

# Script -> name of its click command.
COMMANDS = dict(
    train        = 'main',
    generate     = 'main',
    calc_metrics = 'calc_metrics',
    dataset_tool = 'main',
    legacy       = 'convert_main',
    projector    = 'main',
    visualizer   = 'main',
    style_mixing = 'main',
)

#----------------------------------------------------------------------------

def help_text(script: str) -> str:
    """`python <script>.py --help` as click prints it at a fixed width of 100 columns."""
    command = getattr(importlib.import_module(script), COMMANDS[script])
    result = CliRunner().invoke(command, ['--help'], prog_name=f'{script}.py', terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output

def help_path(script: str) -> str:
    return os.path.normpath(os.path.join(DOCS_DIR, f'{script}-help.txt'))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('script', [name for name in COMMANDS if name != 'train'])
def test_help_is_documented(script):
    path = help_path(script)
    assert os.path.isfile(path), f'{path} is missing; write it with: {REGENERATE}'
    with open(path) as f:
        documented = f.read()
    assert help_text(script) == documented, f'docs/{script}-help.txt is stale; rewrite it with: {REGENERATE}'

#----------------------------------------------------------------------------

def write_all() -> None:
    for script in COMMANDS:
        path = help_path(script)
        with open(path, 'w') as f:
            f.write(help_text(script))
        print(f'Wrote {path}')

if __name__ == '__main__':
    if sys.argv[1:] != ['--write']:
        sys.exit(f'usage: {REGENERATE}  (rewrites docs/<script>-help.txt for {", ".join(f"{s}.py" for s in COMMANDS)})')
    write_all()

#----------------------------------------------------------------------------
