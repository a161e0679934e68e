"""Nothing lost in a run directory: run numbers reserved atomically, only this run's resume
checkpoints pruned, stale temporaries removed, stats.jsonl of an interrupted and resumed run
equal to an uninterrupted run's, and a full disk reported in one line."""

import errno
import json
import os
import threading

import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train
from tests.training.tiny import loop_kwargs
from training import checkpoint
from training import training_loop as tl

TINY_CLI = ['--cfg=auto', '--cbase=256', '--cmax=32', '--batch=4', '--aug=noaug', '--metrics=none', '--workers=0', '--device=cpu']

def _run(image_folder, run_dir, **overrides):
    os.makedirs(run_dir, exist_ok=True)
    return tl.training_loop(**loop_kwargs(image_folder, **dict(dict(run_dir=str(run_dir)), **overrides)))

#----------------------------------------------------------------------------
# Run directory numbers.

def test_reserve_run_dir_takes_the_next_number_when_another_start_wins(tmp_path, monkeypatch):
    outdir = tmp_path / 'runs'
    outdir.mkdir()
    scans = []
    real_next_run_dir = checkpoint.next_run_dir
    def racing_next_run_dir(out, desc):
        # The first scan sees an empty outdir; another start then makes 00000-other.
        path = real_next_run_dir(out, desc)
        if not scans:
            (outdir / '00000-other').mkdir()
        scans.append(path)
        return path
    monkeypatch.setattr(checkpoint, 'next_run_dir', racing_next_run_dir)
    assert checkpoint.reserve_run_dir(str(outdir), 'mine') == str(outdir / '00001-mine')
    assert sorted(os.listdir(outdir)) == ['00000-other', '00001-mine']

def test_reserve_run_dir_concurrent_starts_get_distinct_numbers(tmp_path):
    outdir = str(tmp_path / 'runs')
    results, barrier = [], threading.Barrier(8)
    def start(i):
        barrier.wait()
        results.append(checkpoint.reserve_run_dir(outdir, f'desc{i}'))
    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(os.path.basename(path).split('-')[0] for path in results)
    assert numbers == [f'{i:05d}' for i in range(8)]
    assert sorted(os.listdir(outdir)) == sorted(os.path.basename(path) for path in results), 'no claim left behind'

#----------------------------------------------------------------------------
# Resume checkpoints: only this run's are pruned; where the run continues.

def _checkpoint_at(src: str, dst: str, cur_nimg: int, run_id: str) -> None:
    state = torch.load(src, weights_only=True)
    state.update(cur_nimg=cur_nimg, run_id=run_id)
    torch.save(state, dst)

def test_pruning_removes_only_this_runs_checkpoints(image_folder, tmp_path):
    run_dir = tmp_path / 'run'
    _run(image_folder, run_dir, total_kimg=0.004, network_snapshot_ticks=1)
    first = str(run_dir / 'resume-000000.pt')
    _checkpoint_at(first, str(run_dir / 'resume-000003.pt'), 3000, run_id='another-run')
    _checkpoint_at(first, str(run_dir / 'resume-000004.pt'), 4996, run_id='this-run')
    os.remove(first)
    _run(image_folder, run_dir, total_kimg=5.004, kimg_per_tick=0.004, network_snapshot_ticks=1,
         resume_state=str(run_dir / 'resume-000004.pt'))
    names = sorted(name for name in os.listdir(run_dir) if checkpoint.RESUME_STATE_RE.fullmatch(name))
    assert names == ['resume-000003.pt', 'resume-000005.pt'], 'another run\'s checkpoint was removed, or ours kept'
    assert torch.load(str(run_dir / 'resume-000005.pt'), weights_only=True)['run_id'] == 'this-run'

def test_resume_says_where_the_run_continues_and_refuses_to_overwrite_newer(image_folder, tmp_path):
    outdir = tmp_path / 'runs'
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.004', '--snap=1'])
    assert result.exit_code == 0, result.output
    (run_dir,) = outdir.iterdir()
    state = str(run_dir / 'resume-000000.pt')
    elsewhere = tmp_path / 'elsewhere'
    result = CliRunner().invoke(train.main, [f'--outdir={elsewhere}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.008', '--snap=1',
                                             f'--resume={state}'])
    assert result.exit_code == 0, result.output
    assert f'Note: the run continues in {run_dir}, the directory of --resume, not in --outdir={elsewhere}' in result.output
    assert not elsewhere.exists()
    for same in (outdir, run_dir):   # The run's own outdir, or the run directory itself: nothing to say.
        result = CliRunner().invoke(train.main, [f'--outdir={same}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.008', '--snap=1',
                                                 f'--resume={state}', '--dry-run'])
        assert result.exit_code == 0 and 'Note: the run continues' not in result.output, result.output

    _checkpoint_at(state, str(run_dir / 'resume-000007.pt'), 7000, run_id='x')
    before = sorted(os.listdir(run_dir))
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.008', f'--resume={state}'])
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert 'holds the newer checkpoint resume-000007.pt, whose files this run would overwrite' in result.output
    assert sorted(os.listdir(run_dir)) == before

#----------------------------------------------------------------------------
# Stale temporaries and stats.jsonl.

def test_stale_temporaries_are_removed_on_resume(image_folder, tmp_path, monkeypatch):
    run_dir = tmp_path / 'run'
    _run(image_folder, run_dir, total_kimg=0.004, network_snapshot_ticks=1)
    (run_dir / '.tmp-resume-000000.pt-x1y2').write_bytes(b'partial')
    messages = []
    monkeypatch.chdir(tmp_path)     # The checkpoint by a relative path: the one rewritten under its name stays.
    _run(image_folder, run_dir, total_kimg=0.008, network_snapshot_ticks=1, resume_state='run/resume-000000.pt',
         print_fn=lambda *a, **k: messages.append(' '.join(map(str, a))))
    assert not [name for name in os.listdir(run_dir) if name.startswith('.tmp-')]
    assert 'Removed 1 partial file(s) left by an interrupted write: .tmp-resume-000000.pt-x1y2' in messages
    assert torch.load(str(run_dir / 'resume-000000.pt'), weights_only=True)['cur_nimg'] == 8

class Killed(Exception):
    """Stands in for kill -9 at a chosen point of a tick."""

def _stats(run_dir) -> list[dict]:
    """stats.jsonl without the fields that measure time and memory."""
    lines = [json.loads(line) for line in (run_dir / 'stats.jsonl').read_text().splitlines()]
    return [{k: v for k, v in line.items() if not k.startswith(('Timing/', 'Resources/', 'timestamp'))} for line in lines]

# One step (4 images) per tick, a snapshot every 2 ticks, 7 ticks.
SCHEDULE = dict(total_kimg=0.028, kimg_per_tick=0.004, network_snapshot_ticks=2, G_reg_interval=2, D_reg_interval=3)

@pytest.mark.parametrize('kill, D_reg_interval', [('after-tick-without-snapshot', 3), ('after-stats-before-checkpoint', 3),
                                                  ('after-checkpoint', 3),
                                                  # R1 at steps 0 and 4: the first tick after the resume (step 3) reports
                                                  # none, and its line repeats the R1 figures kept from before the resume.
                                                  ('after-tick-without-snapshot', 4)])
def test_stats_jsonl_of_an_interrupted_run_equals_an_uninterrupted_one(image_folder, tmp_path, kill, D_reg_interval):
    SCHEDULE = dict(globals()['SCHEDULE'], D_reg_interval=D_reg_interval)
    straight = tmp_path / 'straight'
    _run(image_folder, straight, **SCHEDULE)
    split = tmp_path / 'split'
    ticks_logged, ticks_checked = [], []
    def progress_fn(_cur_kimg, _total_kimg):   # Called at the start, then after each tick's stats line.
        ticks_logged.append(len(ticks_logged) - 1)
        if kill == 'after-tick-without-snapshot' and ticks_logged[-1] == 3:
            raise Killed()
        if kill == 'after-stats-before-checkpoint' and ticks_logged[-1] == 4:    # A snapshot tick.
            raise Killed()
    def abort_fn():                              # Called in each tick but the last, before its snapshot and stats line.
        ticks_checked.append(len(ticks_checked))
        if kill == 'after-checkpoint' and ticks_checked[-1] == 3:             # Tick 2 wrote a checkpoint.
            raise Killed()
        return False
    with pytest.raises(Killed):
        _run(image_folder, split, progress_fn=progress_fn, abort_fn=abort_fn, **SCHEDULE)
    _run(image_folder, split, resume_state=checkpoint.find_latest_resume_state(str(split)), **SCHEDULE)
    assert _stats(split) == _stats(straight)

def test_log_txt_is_cut_back_on_resume_as_stats_jsonl_is(tmp_path):
    path = tmp_path / 'log.txt'
    header = 'Loading training set...\nTraining for 0.028 kimg...\n\n'
    ticks = lambda first, last: ''.join(f'tick {t:<5d} kimg {t * 0.004:<8.1f} time 1s\nEvaluating metrics...\n' for t in range(first, last))
    path.write_text(header + ticks(0, 5) + 'tick 5     kimg 0.0')     # Killed after tick 4's lines, inside tick 5's.
    assert checkpoint.cut_log_txt(str(path), next_tick=3) == 5
    assert path.read_text() == header + ticks(0, 3)
    assert checkpoint.cut_log_txt(str(path), next_tick=3) == 0
    assert checkpoint.cut_log_txt(str(tmp_path / 'missing.txt'), next_tick=3) == 0

#----------------------------------------------------------------------------
# A full disk.

def test_full_disk_while_writing_a_checkpoint_is_one_line(image_folder, tmp_path, monkeypatch):
    outdir = tmp_path / 'runs'
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.004', '--snap=1'])
    assert result.exit_code == 0, result.output
    (run_dir,) = outdir.iterdir()
    state = run_dir / 'resume-000000.pt'
    content = state.read_bytes()
    real_atomic_write = dnnlib.util.atomic_write
    def full_disk_for_checkpoints(path, data):
        if os.path.basename(path).startswith('resume-'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        real_atomic_write(path, data)
    monkeypatch.setattr(dnnlib.util, 'atomic_write', full_disk_for_checkpoints)
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={image_folder}', *TINY_CLI, '--kimg=0.012', '--tick=0.004',
                                             '--snap=1', f'--resume={state}'])
    assert result.exit_code != 0 and 'Traceback' not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert errors == [f'Error: no space left on device writing {state}; the previous checkpoint {state} is intact'], result.output
    assert state.read_bytes() == content

#----------------------------------------------------------------------------
# Bad data: caught before the run directory exists.

@pytest.mark.parametrize('problem', ['mixed-sizes', 'mixed-channels', 'corrupt', 'corrupt-jpeg'])
def test_bad_images_are_caught_before_the_run_directory_exists(tmp_path, problem):
    from tests.training.conftest import make_image_folder
    data = tmp_path / 'data'
    make_image_folder(data, num_images=6)
    odd = data / 'img0004.png'
    if problem == 'mixed-sizes':
        make_image_folder(tmp_path / 'big', num_images=5, resolution=32)
        os.replace(tmp_path / 'big' / 'img0004.png', odd)
        expected = '"img0004.png" is 32x32 with 3 channel(s), but "img0000.png" is 16x16 with 3'
    elif problem == 'mixed-channels':
        make_image_folder(tmp_path / 'grey', num_images=5, channels=1)
        os.replace(tmp_path / 'grey' / 'img0004.png', odd)
        expected = '"img0004.png" is 16x16 with 1 channel(s), but "img0000.png" is 16x16 with 3'
    elif problem == 'corrupt':
        odd.write_bytes(odd.read_bytes()[:-40])     # Cut short, as by an interrupted copy.
        expected = 'cannot decode "img0004.png"'
    else:
        import PIL.Image   # pylint: disable=import-outside-toplevel
        jpeg = data / 'img0004.jpg'
        with PIL.Image.open(odd) as img:
            img.save(jpeg, quality=90)
        odd.unlink()
        jpeg.write_bytes(jpeg.read_bytes()[:len(jpeg.read_bytes()) // 2])
        expected = 'cannot decode "img0004.jpg"'
    outdir = tmp_path / 'runs'
    result = CliRunner().invoke(train.main, [f'--outdir={outdir}', f'--data={data}', *TINY_CLI, '--kimg=0.004'])
    assert result.exit_code != 0 and 'Traceback' not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and f'--data={data}' in errors[0] and expected in errors[0], result.output
    assert not outdir.exists()

#----------------------------------------------------------------------------
# --subset that selects nothing less than the whole dataset.

def test_subset_larger_than_the_dataset_is_noted(image_folder, tmp_path):
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={image_folder}', *TINY_CLI, '--subset=100', '--dry-run'])
    assert result.exit_code == 0, result.output
    assert 'Note: --subset=100 is not smaller than the 12 images of --data; training on all of them' in result.output
    result = CliRunner().invoke(train.main, [f'--outdir={tmp_path / "runs"}', f'--data={image_folder}', *TINY_CLI, '--subset=5', '--dry-run'])
    assert result.exit_code == 0 and 'Note: --subset' not in result.output

#----------------------------------------------------------------------------

def test_metric_lines_after_the_checkpoint_are_redone(tmp_path):
    """A kill after a tick's metric line but before its checkpoint repeats the tick on resume:
    that line goes (it is written again); lines of earlier snapshots and lines older than the
    checkpoint stay, even when written by calc_metrics.py by hand."""
    from training import checkpoint
    state = tmp_path / 'resume-000004.pt'
    state.write_bytes(b'checkpoint')
    os.utime(state, (1000, 1000))
    lines = [dict(snapshot_pkl='network-snapshot-000004.pkl', timestamp=999),     # The checkpoint's own tick: stays.
             dict(snapshot_pkl='network-snapshot-000002.pkl', timestamp=1500),    # calc_metrics.py on an old snapshot: stays.
             dict(snapshot_pkl='network-snapshot-000008.pkl', timestamp=1200)]    # After the checkpoint: redone.
    text = ''.join(json.dumps(dict(line, metric='fid2k_full', results={})) + '\n' for line in lines) + '{"snapshot_pkl": "netw'
    (tmp_path / 'metric-fid2k_full.jsonl').write_text(text)
    assert checkpoint.cut_metric_jsonl(str(tmp_path), str(state)) == 2
    kept = [json.loads(line)['snapshot_pkl'] for line in (tmp_path / 'metric-fid2k_full.jsonl').read_text().splitlines()]
    assert kept == ['network-snapshot-000004.pkl', 'network-snapshot-000002.pkl']
