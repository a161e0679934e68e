"""style_mixing.py: upstream's options and output names, for StyleGAN2 and the FPA (where
--styles selects painting steps). The expected cells are computed here from G.mapping and
G.synthesis as upstream's script does."""

import os

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import style_mixing
from painting import latents, paintings, pictures
from tests.networks.test_contract import RESOLUTION, _build
from torch_utils import persistence

#----------------------------------------------------------------------------

@pytest.fixture(scope='module', params=['stylegan2', 'fpa'])
def network(request, tmp_path_factory):
    G = _build(request.param, c_dim=0, img_channels=3).requires_grad_(False)
    path = str(tmp_path_factory.mktemp('net') / f'{request.param}.pkl')
    persistence.save_network(path, G=G, G_ema=G)
    return G, path

def invoke(*args):
    result = CliRunner().invoke(style_mixing.main, ['--device=cpu', *map(str, args)])
    return result.exit_code, result.output

def upstream_cell(G, row_seed, col_seed, styles, psi):
    """Upstream's computation: w of the row seed, the rows `styles` replaced by the column seed's."""
    w = {seed: G.mapping(latents.seeds_to_z([seed], G.z_dim), None)[0] for seed in (row_seed, col_seed)}
    w = {seed: G.mapping.w_avg + (v - G.mapping.w_avg) * psi for seed, v in w.items()}
    mixed = w[row_seed].clone()
    mixed[styles] = w[col_seed][styles]
    return pictures.to_uint8(G.synthesis(mixed[None], noise_mode='const'))[0]

def read(path):
    return np.asarray(PIL.Image.open(path))

#----------------------------------------------------------------------------

def test_outputs_as_upstream(network, tmp_path):
    G, path = network
    styles = [0, G.num_ws - 1]          # Scattered rows: for the FPA, the first and the last painting step.
    code, output = invoke(f'--network={path}', '--rows=1,2', '--cols=3,4,5', f'--styles=0,{G.num_ws - 1}', '--trunc=0.7', f'--outdir={tmp_path}')
    assert code == 0, output
    names = {f'{r}-{c}.png' for r in (1, 2) for c in (3, 4, 5)} | {f'{s}-{s}.png' for s in (1, 2, 3, 4, 5)} | {'grid.png'}
    assert set(os.listdir(tmp_path)) == names
    for r, c in [(1, 3), (2, 5)]:
        diff = np.abs(read(tmp_path / f'{r}-{c}.png').astype(int) - upstream_cell(G, r, c, styles, 0.7).astype(int))
        assert diff.max() <= 1, f'{r}-{c}.png differs from upstream\'s computation by {diff.max()} levels'
    grid = read(tmp_path / 'grid.png')
    assert grid.shape == (3 * RESOLUTION, 4 * RESOLUTION, 3) and (grid[:RESOLUTION, :RESOLUTION] == 0).all()   # Black corner, no gaps.
    assert (grid[RESOLUTION:2 * RESOLUTION, 3 * RESOLUTION:] == read(tmp_path / '1-5.png')).all()
    assert (grid[:RESOLUTION, RESOLUTION:2 * RESOLUTION] == read(tmp_path / '3-3.png')).all()
    assert ('painting steps' if paintings.paints(G) else 'rows of ws') in output

def test_bad_styles_are_one_line(network, tmp_path):
    G, path = network
    code, output = invoke(f'--network={path}', '--rows=1', '--cols=2', f'--styles=0-{G.num_ws}', f'--outdir={tmp_path}')
    assert code == 1 and f'--styles: row {G.num_ws} of ws is out of range: expected 0..{G.num_ws - 1}' in output
    code, output = invoke(f'--network={path}', '--rows=1', '--cols=2', '--styles=0-99999999999', f'--outdir={tmp_path}')
    assert code == 2 and 'beyond any network' in output
    code, output = invoke(f'--network={path}', '--rows=1', '--cols=x', f'--outdir={tmp_path}')
    assert code == 2 and '--cols' in output
    assert not os.listdir(tmp_path)

#----------------------------------------------------------------------------

def test_existing_outputs_are_kept_unless_overwrite(network, tmp_path):
    G, path = network
    (tmp_path / 'grid.png').write_bytes(b'mine')
    code, output = invoke(f'--network={path}', '--rows=1', '--cols=2', '--styles=0-1', f'--outdir={tmp_path}')
    assert code == 1 and 'already holds grid.png' in output and '--overwrite' in output, output
    assert (tmp_path / 'grid.png').read_bytes() == b'mine' and os.listdir(tmp_path) == ['grid.png']
    code, output = invoke(f'--network={path}', '--rows=1', '--cols=2', '--styles=0-1', f'--outdir={tmp_path}', '--overwrite')
    assert code == 0 and 'replacing grid.png' in output, output
    assert read(tmp_path / 'grid.png').shape == (2 * RESOLUTION, 2 * RESOLUTION, 3)
