"""--resume=latest and --resume=auto: find the run in --outdir that this command continues.

A run matches when its training_options.json names the same data (the path, resolved against
the current directory), resolution, labels and generator (the whole G_kwargs: class and every
option) as this command's config. Of the matching runs that hold a resume checkpoint, the
highest-numbered wins. `latest` refuses when none matches; `auto` then starts a new run, so
one command line serves a cluster job's first start and every requeue.

Pure lookups on the file system: train.py calls them on rank 0 (torchrun) or in the parent
before spawning (--gpus=N) and hands the result to every process.
"""

import json
import os
import re

import dnnlib
from training import checkpoint

RESUME_SEARCH_MODES = ('latest', 'auto')
RUN_DIR_RE = re.compile(r'^(\d+)-')

#----------------------------------------------------------------------------

def run_identity(c: dict) -> dict:
    """What must agree for one run to continue another (from training_loop kwargs)."""
    data = c['training_set_kwargs']
    return dict(
        data=os.path.realpath(os.path.expanduser(str(data['path']))),
        resolution=data.get('resolution'),
        use_labels=bool(data.get('use_labels', False)),
        G_kwargs=json.loads(json.dumps(c['G_kwargs'])),     # As training_options.json stores it.
    )

def read_run_identity(run_dir: str) -> dict | None:
    """run_identity of a run directory's training_options.json, or None when the file is
    missing, unreadable or lacks what run_identity needs (a neighbour's broken directory)."""
    try:
        with open(os.path.join(run_dir, 'training_options.json')) as f:
            return run_identity(json.load(f))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None

def find_matching_resume_state(outdir: str, c: dict) -> tuple[str | None, int, list[str]]:
    """(newest resume checkpoint of the highest-numbered matching run or None, number of runs
    with a checkpoint that did not match, names of the runs with a checkpoint skipped because
    their training_options.json is missing or corrupt)."""
    names = os.listdir(outdir) if os.path.isdir(outdir) else []
    runs = sorted(((int(m.group(1)), name) for name in names if (m := RUN_DIR_RE.match(name))), reverse=True)
    wanted = run_identity(c)
    num_other, broken = 0, []
    for _num, name in runs:
        run_dir = os.path.join(outdir, name)
        state = checkpoint.find_latest_resume_state(run_dir)
        if state is None:
            continue
        identity = read_run_identity(run_dir)
        if identity is None:
            broken.append(name)
        elif identity == wanted:
            return state, num_other, broken
        else:
            num_other += 1
    return None, num_other, broken

def resolve(mode: str, outdir: str, c: dict) -> dnnlib.EasyDict:
    """EasyDict(resume = checkpoint path or None, message = one line for the user, error = None
    or the one-line reason to stop). `mode` is one of RESUME_SEARCH_MODES."""
    assert mode in RESUME_SEARCH_MODES
    state, num_other, broken = find_matching_resume_state(outdir, c)
    skipped = (f'; skipped {len(broken)} run{"s" if len(broken) != 1 else ""} whose training_options.json is missing or corrupt '
               f'({", ".join(broken[:3])}{" ..." if len(broken) > 3 else ""})') if broken else ''
    if state is not None:
        run_name = os.path.basename(os.path.dirname(state))
        return dnnlib.EasyDict(resume=state, error=None,
            message=f'--resume={mode}: continuing run {run_name} from {os.path.basename(state)} (same data, resolution and generator){skipped}')
    others = f' ({num_other} other run{"s" if num_other != 1 else ""} with a checkpoint: other data, resolution or generator options)' if num_other else ''
    others += skipped
    if mode == 'latest':
        return dnnlib.EasyDict(resume=None, message=None,
            error=f'--resume=latest: no run in --outdir={outdir} with a resume checkpoint (resume-KKKKKK.pt) matches this command{others}')
    return dnnlib.EasyDict(resume=None, error=None,
        message=f'--resume=auto: no run in --outdir={outdir} to continue{others}; starting a new run')

#----------------------------------------------------------------------------
