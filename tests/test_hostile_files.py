"""Hostile files through every route that reads one: nothing a file says is resolved to a
callable outside the explicit allow-lists, sizes a file asks for are bounded before anything
is allocated, and each refusal is one line naming the key and the value. Each hostile file
would write a marker file or overwrite a victim file if a name in it were ever called."""

import importlib
import io
import json
import os
import re

import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import generate
import legacy
import networks
import train
from tests.training.conftest import make_image_folder
from torch_utils import persistence
from training import dataset as dataset_module
from training import checkpoint

RESOLUTION = 16

def tiny_fpa(**overrides) -> torch.nn.Module:
    kwargs = networks.generator_kwargs('fpa')
    kwargs.update(num_steps=4, step_latent_dim=4, step_input_dim=16, hidden_dim=32)
    kwargs.update(overrides)
    return dnnlib.util.construct_class_by_name(**kwargs, z_dim=16, c_dim=0, img_resolution=RESOLUTION, img_channels=3).eval()

@pytest.fixture
def victim(tmp_path):
    """A file a payload would overwrite, and a marker path a payload would create."""
    path = tmp_path / 'victim.txt'
    path.write_text('precious')
    files = dnnlib.EasyDict(victim=path, marker=tmp_path / 'marker')
    yield files
    assert path.read_text() == 'precious', 'a name from the file was called: the victim was overwritten'
    assert not files.marker.exists(), 'a name from the file was called: the marker was written'

def hostile_module_entry(class_name: str, marker) -> dict:
    """A module entry whose 'class' would write `marker` if it were called with its init_kwargs."""
    return dict(class_name=class_name, init_kwargs=dict(path=str(marker)), state_dict={})

def save_network_with(path, **entries) -> str:
    """A network file of this codebase (tiny FPA as G_ema unless given) with extra raw entries."""
    persistence.save_network(str(path), G_ema=tiny_fpa())
    data = torch.load(str(path), weights_only=True)
    data.update(entries)
    torch.save(data, str(path))
    return str(path)

def one_line_error(output: str) -> str:
    assert 'Traceback' not in output, output
    errors = [line for line in output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1, output
    return errors[0]

# Names a payload would use: a function of ours that writes files, the same reached through
# the old allowed package prefixes, and a shell.
PAYLOAD_NAMES = ['torch_utils.persistence.save_network', 'networks.fpa.persistence.save_network',
                 'training.checkpoint.persistence.save_network']

#----------------------------------------------------------------------------
# Network files: module entries (every loader goes through persistence.module_from_data).

@pytest.mark.parametrize('class_name', PAYLOAD_NAMES)
def test_network_file_module_class_outside_the_allow_list(tmp_path, victim, class_name, monkeypatch):
    path = save_network_with(tmp_path / 'hostile.pkl', G_ema=hostile_module_entry(class_name, victim.marker))
    resolved = []
    monkeypatch.setattr(dnnlib.util, 'get_obj_by_name', lambda name: resolved.append(name))
    for load in (networks.load_network, legacy.load_network_pkl):
        with pytest.raises(ValueError, match=rf"G_ema: class_name='{class_name}' is not allowed here \(expected networks.fpa.Generator"):
            load(path)
    assert resolved == [], 'the name was looked up before the allow-list refused it'

def test_network_file_through_generate_and_train(tmp_path, victim):
    path = save_network_with(tmp_path / 'hostile.pkl', G_ema=hostile_module_entry(PAYLOAD_NAMES[0], victim.marker),
                             G=hostile_module_entry(PAYLOAD_NAMES[0], victim.victim))
    result = CliRunner().invoke(generate.main, ['--network', path, '--seeds', '0', '--outdir', str(tmp_path / 'out')])
    assert result.exit_code != 0 and PAYLOAD_NAMES[0] in one_line_error(result.output)
    data = make_image_folder(tmp_path / 'data')
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--metrics=none',
                                             f'--resume={path}', '--dry-run'])
    assert result.exit_code != 0 and PAYLOAD_NAMES[0] in one_line_error(result.output)
    assert not (tmp_path / 'runs').exists()

def test_network_file_training_set_kwargs_through_calc_metrics(tmp_path, victim):
    # The hole the issue found: calc_metrics.py without --data built the stored dataset class.
    for kwargs in (dict(class_name='torch_utils.persistence.save_network', path=str(victim.victim)),
                   dict(class_name='subprocess.getoutput', cmd=f'touch {victim.marker}')):
        path = save_network_with(tmp_path / 'hostile.pkl', training_set_kwargs=kwargs)
        result = CliRunner().invoke(calc_metrics.calc_metrics, ['--network', path, '--metrics=none', '--device=cpu'])
        error = one_line_error(result.output)
        assert result.exit_code != 0
        assert f"training_set_kwargs: class_name='{kwargs['class_name']}' is not allowed" in error, error

def test_every_persistent_class_is_on_the_allow_list():
    # The allow-list comes from the registries (networks.network_classes); every persistent
    # class in the modules it names must be on it, and each entry must be a persistent class.
    modules = {importlib.import_module(name.rsplit('.', 1)[0]) for name in persistence.NETWORK_CLASSES}
    found = {f'{cls.__module__}.{cls.__qualname__}' for module in modules
             for cls in vars(module).values() if isinstance(cls, type) and getattr(cls, '_persistent', False)}
    assert found == set(persistence.NETWORK_CLASSES) == set(networks.network_classes())
    assert {kwargs.class_name for kwargs in networks.GENERATORS.values()} <= found

#----------------------------------------------------------------------------
# Sizes a network file asks for.

def test_network_file_init_kwargs_asking_for_terabytes(tmp_path):
    G = tiny_fpa()
    entry = persistence.module_to_data(G)
    entry['init_kwargs']['hidden_dim'] = 2 ** 20       # An LSTM of 4 * 2^40 weights per matrix: 16 TB.
    path = save_network_with(tmp_path / 'huge.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs.hidden_dim=1048576 is above the limit 65536 for integers in a network file'):
        networks.load_network(path)

    entry['init_kwargs']['hidden_dim'] = 2 ** 15       # Within the integer bound, but not what the file stores.
    path = save_network_with(tmp_path / 'big.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs make synthesis\.\S+ of shape \[\d+, \d+\], the file stores'):
        networks.load_network(path)

    entry['state_dict'] = {}                           # Nothing stored to compare with: the byte budget holds.
    path = save_network_with(tmp_path / 'empty.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs ask for [\d.]+ GiB of tensors; the limit is what the file stores \(0 GiB\) plus 0.25 GiB'):
        networks.load_network(path)

class _NeedsRealTensors(torch.nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.total = float(torch.ones(width).numpy().sum())     # Not possible with fake tensors.

def test_init_kwargs_that_cannot_be_checked_are_refused():
    with pytest.raises(ValueError, match=r'^x: cannot check the sizes init_kwargs ask for \(RuntimeError: '):
        persistence.check_init_kwargs(_NeedsRealTensors, dict(width=2), {}, 'x')

def test_network_file_within_bounds_still_loads(tmp_path):
    G = tiny_fpa()
    path = str(tmp_path / 'ok.pkl')
    persistence.save_network(path, G_ema=G)
    loaded = networks.load_network(path).G_ema
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.state_dict().values()))

#----------------------------------------------------------------------------
# Resume checkpoints and dataset.json: plain data only; sizes bounded.

def test_resume_checkpoint_with_names_and_code(tmp_path, victim):
    path = str(tmp_path / 'resume-000000.pt')
    torch.save(dict(valid_resume_state(), G=hostile_module_entry(PAYLOAD_NAMES[0], victim.marker)), path)
    G = tiny_fpa()
    state = checkpoint.load_resume_state(path)
    with pytest.raises(ValueError, match='G does not match this run'):
        checkpoint.load_module_state(G, state['G'], 'G', path)

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {victim.marker}',))
    torch.save(dict(format=checkpoint.RESUME_STATE_FORMAT, payload=Payload()), path)
    with pytest.raises(ValueError, match='not a readable resume checkpoint') as info:
        checkpoint.load_resume_state(path)
    assert 'weights_only' not in str(info.value) and '\n' not in str(info.value)

def test_dataset_json_label_asking_for_petabytes(tmp_path):
    data = make_image_folder(tmp_path / 'data', num_images=2)
    (tmp_path / 'data' / 'dataset.json').write_text(json.dumps({'labels': [['img0000.png', 0], ['img0001.png', 10 ** 12]]}))
    with pytest.raises(ValueError, match=r'dataset.json: class label 1000000000000 is above the limit of 65535'):
        dataset_module.ImageFolderDataset(data, use_labels=True)
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--cond=1', '--dry-run'])
    assert result.exit_code != 0 and 'class label 1000000000000' in one_line_error(result.output)
    (tmp_path / 'data' / 'dataset.json').write_text(json.dumps({'labels': [['img0000.png', 0], ['img0001.png', 10 ** 30]]}))
    with pytest.raises(ValueError, match=r'class label 1000000000000000000000000000000 is above the limit'):
        dataset_module.ImageFolderDataset(data, use_labels=True)

#----------------------------------------------------------------------------
# Detector weights: a torch.save file with code in it is refused without torch's advice.

def test_detector_file_with_code(tmp_path, victim):
    from metrics import inception   # pylint: disable=import-outside-toplevel
    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {victim.marker}',))
    path = str(tmp_path / 'inception-2015-12-05.pt')
    torch.save({'layers.conv.weight': Payload()}, path)
    with pytest.raises(ValueError, match=r'detector .*inception-2015-12-05.pt: not a readable torch.save file') as info:
        inception.read_state_dict(path)
    assert 'weights_only' not in str(info.value) and '\n' not in str(info.value)

#----------------------------------------------------------------------------
# Structures that cost unbounded time to walk, tensors that claim more than they store, and
# sizes that a forward pass would allocate: refused in one line, in every kind of file.

def list_bomb(levels: int = 40) -> list:
    """A list holding one list twice, 40 levels deep: a few hundred bytes in a file, 2^40 values to a walker."""
    value = [0]
    for _ in range(levels):
        value = [value, value]
    return value

def test_structure_bombs_in_every_file_kind(tmp_path):
    from tests import upstream_format   # pylint: disable=import-outside-toplevel
    from tests.test_legacy import make_checkpoint, reference_layout   # pylint: disable=import-outside-toplevel
    match = r'data with more than 1,000,000 values \(lists or dicts repeated by reference\?\)'
    for name, entries in [('tsk', dict(training_set_kwargs=dict(path='x', extra=list_bomb()))), ('other', dict(notes=list_bomb()))]:
        path = save_network_with(tmp_path / f'bomb-{name}.pkl', **entries)
        with pytest.raises(ValueError, match=match):
            networks.load_network(path)
    deep = {}
    for _ in range(dnnlib.util.MAX_STRUCTURE_DEPTH + 2):
        deep = {'a': deep}
    path = save_network_with(tmp_path / 'deep.pkl', training_set_kwargs=deep)
    with pytest.raises(ValueError, match=r'deep.pkl: data nested deeper than 128 levels'):
        networks.load_network(path)
    # A resume checkpoint.
    path = str(tmp_path / 'resume-000000.pt')
    torch.save(dict(format=checkpoint.RESUME_STATE_FORMAT, version=checkpoint.RESUME_STATE_VERSION, stats_kept=dict(x=list_bomb())), path)
    with pytest.raises(ValueError, match=match):
        checkpoint.load_resume_state(path)
    # A reference checkpoint (read by the restricted unpickler: the bomb sits in an argparse stand-in).
    ckpt, _, _ = make_checkpoint(reference_layout('lstm_delta_split_v2', z_dim=8, T=4, H=16, L=1, C=3, N=8))
    ckpt['args'].extra = list_bomb()
    torch.save(ckpt, str(tmp_path / 'ref.pt'))
    with pytest.raises(ValueError, match=match):
        networks.load_network(str(tmp_path / 'ref.pt'))
    # An upstream pickle: constructor arguments, and a _parameters entry that is not a dict.
    meta = dict(type='class', version=6, module_src=upstream_format.SOURCE_MARKERS['stylegan2-ada'], class_name='Generator',
                state=dict(_parameters={}, _buffers={}, _modules={}, _init_args=(), _init_kwargs=dict(z_dim=8, extra=list_bomb())))
    upstream_format.write_upstream_pickle(tmp_path / 'up.pkl', dict(G_ema=upstream_format._Record(meta)))
    with pytest.raises(ValueError, match=match):
        networks.load_network(str(tmp_path / 'up.pkl'))
    meta['state'].update(_parameters=[1, 2], _init_kwargs=dict(z_dim=8))
    upstream_format.write_upstream_pickle(tmp_path / 'up.pkl', dict(G_ema=upstream_format._Record(meta)))
    with pytest.raises(ValueError, match=r'up.pkl: G_ema: _parameters is a list, expected a dict'):
        networks.load_network(str(tmp_path / 'up.pkl'))

def test_check_structure_size_counts_shared_values_each_time():
    dnnlib.util.check_structure_size(list_bomb(18), 'x')     # 2^19 values: within the bound.
    with pytest.raises(ValueError, match=r'^x: data with more than'):
        dnnlib.util.check_structure_size(list_bomb(20), 'x')

def test_stride_zero_tensors_count_what_the_file_holds(tmp_path):
    from torch._subclasses.fake_tensor import FakeTensorMode   # pylint: disable=import-outside-toplevel
    entry = persistence.module_to_data(tiny_fpa())
    entry['init_kwargs']['hidden_dim'] = 2 ** 14
    with FakeTensorMode():
        shapes = {k: v.shape for k, v in tiny_fpa(hidden_dim=2 ** 14).state_dict().items()}
    entry['state_dict'] = {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}   # A few KB claiming 4 GiB.
    path = save_network_with(tmp_path / 'stride0.pkl', G_ema=entry)
    assert os.path.getsize(path) < 200_000
    with pytest.raises(ValueError, match=r'G_ema: init_kwargs ask for 4.01 GiB of tensors; the limit is what the file stores \(4.84e-08 GiB\)'):
        networks.load_network(path)

def test_reference_checkpoint_sizes_are_bounded_before_building(tmp_path):
    from tests.test_legacy import reference_layout   # pylint: disable=import-outside-toplevel
    def expanded(**sizes):
        layout = reference_layout('lstm_delta_split_v2', z_dim=8, C=3, L=1, **sizes)
        gan = {f'{prefix}.{name}': torch.zeros(1).expand(shape) for name, shape, _ in layout for prefix in ('G', 'GE')}
        path = str(tmp_path / 'ref.pt')
        torch.save({'GAN': gan}, path)
        return path
    with pytest.raises(ValueError, match=r'ref.pt: init_kwargs ask for [\d.]+ GiB of tensors'):
        networks.load_network(expanded(T=4, H=16384, N=8))
    with pytest.raises(ValueError, match=r'ref.pt: img_resolution=20000 is above the limit 4096'):
        networks.load_network(expanded(T=4, H=16, N=20000))
    with pytest.raises(ValueError, match=r'ref.pt: init_kwargs.img_resolution=200000 is above the limit 65536'):
        networks.load_network(expanded(T=4, H=16, N=200000))
    with pytest.raises(ValueError, match=r'ref.pt: img_channels \* img_resolution\^2 \* num_steps = 3\*64\^2\*60000 = '):
        networks.load_network(expanded(T=60000, H=16, N=64))
    result = CliRunner().invoke(legacy.convert_main, ['--source', expanded(T=4, H=16, N=200000), '--dest', str(tmp_path / 'out.pkl')])
    assert result.exit_code != 0 and 'img_resolution=200000' in one_line_error(result.output)
    assert not (tmp_path / 'out.pkl').exists()

def test_non_finite_weights_buffers_and_arguments_are_refused(tmp_path):
    from tests.test_legacy import make_checkpoint, reference_layout   # pylint: disable=import-outside-toplevel
    G = tiny_fpa()
    for name in ('mapping.w_avg', next(k for k, v in G.state_dict().items() if v.ndim == 2)):
        entry = persistence.module_to_data(G)
        entry['state_dict'][name].view(-1)[0] = float('nan')
        with pytest.raises(ValueError, match=rf'nan.pkl: G_ema.{re.escape(name)} holds NaN or infinite values'):
            networks.load_network(save_network_with(tmp_path / 'nan.pkl', G_ema=entry))
    S = dnnlib.util.construct_class_by_name(**dict(networks.generator_kwargs('stylegan2'), w_dim=8), z_dim=8, c_dim=0,
                                            img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
    for key, value in [('w_avg_beta', float('nan')), ('lr_multiplier', float('inf'))]:
        entry = persistence.module_to_data(S)
        entry['init_kwargs']['mapping_kwargs'][key] = value
        with pytest.raises(ValueError, match=rf'G_ema: init_kwargs.mapping_kwargs.{key}={value}: expected a finite number'):
            networks.load_network(save_network_with(tmp_path / 'bad.pkl', G_ema=entry))
    ckpt, _, _ = make_checkpoint(reference_layout('lstm_delta_split_v2', z_dim=8, T=4, H=16, L=1, C=3, N=8))
    ckpt['GAN']['GE.kvb_net.bias'][0] = float('nan')
    torch.save(ckpt, str(tmp_path / 'ref.pt'))
    with pytest.raises(ValueError, match=r'ref.pt: G_ema.synthesis.\S+ holds NaN or infinite values'):
        networks.load_network(str(tmp_path / 'ref.pt'))

def test_load_network_misuse_and_wrong_files_say_what_they_are(tmp_path):
    path = save_network_with(tmp_path / 'net.pkl')
    with pytest.raises(ValueError, match=r"load_network: unknown option 'bogus'"):
        networks.load_network(path, bogus=1)
    with pytest.raises(ValueError, match=r'is a directory, expected a file'):
        networks.load_network(str(tmp_path))
    resume = str(tmp_path / 'resume-000000.pt')
    torch.save(dict(format=checkpoint.RESUME_STATE_FORMAT, version=checkpoint.RESUME_STATE_VERSION), resume)
    with pytest.raises(ValueError, match=r'resume-000000.pt: a resume checkpoint of train.py, not a network file'):
        networks.load_network(resume)

#----------------------------------------------------------------------------
# Hand-made resume checkpoints: the right format and version, but parts missing or out of range.

def valid_resume_state() -> dict:
    """The plain data of a checkpoint as encode_resume_state writes it (tiny modules)."""
    G, D = tiny_fpa(), torch.nn.Linear(2, 1)
    opts = {name: torch.optim.Adam(module.parameters()) for name, module in (('G_opt', G), ('D_opt', D))}
    loss = dnnlib.EasyDict(state_dict=lambda: dict(pl_mean=torch.zeros([])))
    state = checkpoint.RunState(run_id='abc', random_seed=0, batch_size=4, num_gpus=1, cur_nimg=64, cur_tick=2, batch_idx=16, elapsed_sec=1.5)
    data = checkpoint.encode_resume_state(state, dict(G=G, D=D, G_ema=G, augment_pipe=None), opts, loss,
                                          ada_pending={}, rng=checkpoint.get_rng_states(), stats_kept={})
    return torch.load(io.BytesIO(data), weights_only=True)

@pytest.mark.parametrize('edit,match', [
    (lambda s: s.pop('G'), r'"G" is missing, expected a dict'),
    (lambda s: s.pop('rng'), r'"rng" is missing, expected a dict'),
    (lambda s: s['G_opt'].update(param_groups=[]), r'optimiser state "G_opt" has no parameter groups'),
    (lambda s: s['rng'].update(torch=torch.zeros(3, dtype=torch.uint8)), r'the torch RNG state is not a torch.uint8 tensor of shape \[5056\]'),
    (lambda s: s['rng']['python'].update(state=[1, 2]), r'the python RNG state is not a list of 625 integers'),
    (lambda s: s.update(cur_nimg=-5000), r'counter cur_nimg=-5000 is not an integer in \[0, 9007199254740992\]'),
    (lambda s: s.update(batch_idx=2 ** 60), r'counter batch_idx=1152921504606846976 is not an integer in \[0, \d+\]'),
    (lambda s: s.update(elapsed_sec=float('nan')), r'elapsed_sec=nan is not a finite non-negative number'),
])
def test_hand_made_resume_checkpoints_one_line_each(tmp_path, edit, match):
    state = valid_resume_state()
    path = str(tmp_path / 'resume-000000.pt')
    torch.save(state, path)
    checkpoint.load_resume_state(path)     # The unedited checkpoint loads.
    edit(state)
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf'resume-000000.pt: {match}; the checkpoint is damaged or was not written by train.py'):
        checkpoint.load_resume_state(path)
    data = make_image_folder(tmp_path / 'data')
    result = CliRunner().invoke(train.main, ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--metrics=none',
                                             f'--resume={path}', '--dry-run'])
    assert result.exit_code != 0 and 'the checkpoint is damaged' in one_line_error(result.output)

@pytest.mark.parametrize('options', ['{"training_set_kwargs": "abc", "G_kwargs": {}}', '{}', '{"training_set_kwargs": {}, "G_kwargs": {}}',
                                     '{not json', None])
def test_broken_neighbour_run_is_skipped_by_resume_search(tmp_path, options):
    data = make_image_folder(tmp_path / 'data')
    bad = tmp_path / 'runs' / '00007-bad'
    bad.mkdir(parents=True)
    (bad / 'resume-000000.pt').write_bytes(b'x')
    if options is not None:
        (bad / 'training_options.json').write_text(options)
    common = ['--outdir', str(tmp_path / 'runs'), '--data', data, '--cfg=fpa-cpu', '--metrics=none', '--dry-run']
    result = CliRunner().invoke(train.main, common + ['--resume=latest'])
    error = one_line_error(result.output)
    assert result.exit_code != 0 and 'skipped 1 run whose training_options.json is missing or corrupt (00007-bad)' in error, error
    result = CliRunner().invoke(train.main, common + ['--resume=auto'])
    assert result.exit_code == 0 and 'Traceback' not in result.output, result.output
    assert 'skipped 1 run whose training_options.json is missing or corrupt (00007-bad); starting a new run' in result.output

def test_constructor_complaints_name_the_file(tmp_path):
    entry = persistence.module_to_data(tiny_fpa())
    entry['init_kwargs']['z_dim'] = 16.0
    path = save_network_with(tmp_path / 'float.pkl', G_ema=entry)
    with pytest.raises(ValueError, match=r'float.pkl: G_ema: .*z_dim.*16.0'):
        networks.load_network(path)
    result = CliRunner().invoke(generate.main, ['--network', path, '--seeds', '0', '--outdir', str(tmp_path / 'out')])
    assert 'float.pkl: G_ema:' in one_line_error(result.output)
