"""demo.py's handling of its paths and of an --outdir from an earlier demo (the scripts it runs
are recorded, not run)."""

import os

import pytest
from click.testing import CliRunner

import demo

@pytest.fixture
def recorded(monkeypatch):
    calls = []
    def run(args):
        calls.append(args)
        if args[0] == 'dataset_tool.py':    # Stands in for the dataset it would write.
            open(args[2][len('--dest='):], 'w').close()
    monkeypatch.setattr(demo, 'run', run)
    return calls

def test_relative_paths_are_resolved_against_the_current_directory(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'photos').mkdir()
    result = CliRunner().invoke(demo.main, ['--source=photos', '--outdir=out'])
    assert 'training wrote no network snapshot' in result.output     # (Nothing was trained: the scripts were only recorded.)
    assert recorded[0][:3] == ['dataset_tool.py', f'--source={tmp_path / "photos"}', f'--dest={tmp_path / "out" / "dataset-32.zip"}']
    assert f'--outdir={tmp_path / "out" / "runs"}' in recorded[1]
    assert (tmp_path / 'out' / 'dataset-32.zip.source').read_text() == f'{tmp_path / "photos"}\n'

def test_a_new_source_never_reuses_the_dataset_of_another(tmp_path, monkeypatch, recorded):
    monkeypatch.chdir(tmp_path)
    for name in ('old', 'new'):
        (tmp_path / name).mkdir()
    CliRunner().invoke(demo.main, ['--source=old', '--outdir=out'])
    recorded.clear()
    result = CliRunner().invoke(demo.main, ['--source=new', '--outdir=out'])
    assert result.exit_code != 0 and recorded == []
    assert f'already holds dataset-32.zip, made from {tmp_path / "old"}, not from --source={tmp_path / "new"}' in result.output
    result = CliRunner().invoke(demo.main, ['--source=old', '--outdir=out'])     # The same source again continues.
    assert recorded and recorded[0][0] == 'train.py'
    assert not os.path.exists(os.path.join(demo.REPO, 'out'))
