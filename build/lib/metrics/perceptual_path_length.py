"""Perceptual Path Length (Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks", CVPR 2019, eqs. 2-3; StyleGAN2 uses the W-space, endpoint variant).

    PPL = E[ d(g(l(z0, z1; t)), g(l(z0, z1; t + eps))) / eps^2 ]

with d the LPIPS distance of the VGG16 LPIPS features (upstream's vgg16.pt TorchScript, called
with resize_images=False, return_lpips=True), eps = 1e-4, t ~ U(0, 1) ("full") or t = 0
("end"), and l = slerp in Z or lerp in W. Distances outside the 1st-99th percentile are
dropped before averaging. Optionally the images are cropped to the face region
(rows 3/8..7/8, columns 2/8..6/8) and box-downsampled to 256 pixels.

Through the generator contract: W-space paths need `G.mapping` and `G.synthesis`; Z-space
paths call `G(z, c)` directly, so they work for every generator. Buffers named
`*.noise_const` are re-randomised per batch (per-pixel noise of StyleGAN generators).
"""

import copy

import numpy as np
import torch

from metrics import metric_utils

#----------------------------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of directions a, b [N, D] at t [N, 1] (result has unit norm)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)

def has_w_space(G) -> bool:
    return hasattr(G, 'mapping') and hasattr(G, 'synthesis')

#----------------------------------------------------------------------------

class PPLSampler(torch.nn.Module):
    def __init__(self,
        G,                      # Generator (contract in networks/__init__.py).
        G_kwargs: dict,         # Extra keywords for G / G.synthesis.
        epsilon: float,         # Step along the path.
        space: str,             # 'z' (slerp of z) or 'w' (lerp of ws).
        sampling: str,          # 'full' (t ~ U(0, 1)) or 'end' (t = 0).
        crop: bool,             # Crop to the face region (FFHQ convention).
        vgg16,                  # LPIPS-feature network: vgg16(img, resize_images=False, return_lpips=True).
    ):
        assert space in ('z', 'w') and sampling in ('full', 'end')
        super().__init__()
        self.G = copy.deepcopy(G)
        self.G_kwargs = G_kwargs
        self.epsilon = epsilon
        self.space = space
        self.sampling = sampling
        self.crop = crop
        self.vgg16 = vgg16

    def forward(self, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Squared LPIPS distance / eps^2 per pair [N] for latent pairs z0, z1 [N, z_dim], t [N]."""
        G, eps = self.G, self.epsilon
        t = t[:, None]
        if self.space == 'w':
            w0, w1 = G.mapping(z=torch.cat([z0, z1]), c=torch.cat([c, c])).chunk(2)
            wt0 = w0.lerp(w1, t[:, :, None])
            wt1 = w0.lerp(w1, t[:, :, None] + eps)
            img = G.synthesis(torch.cat([wt0, wt1]), noise_mode='const', force_fp32=True, **self.G_kwargs)
        else:
            zt0 = slerp(z0, z1, t)
            zt1 = slerp(z0, z1, t + eps)
            # slerp returns unit vectors; z ~ N(0, I) has norm ~ sqrt(z_dim) and generators
            # normalise z anyway, so scale back to the usual length.
            scale = float(np.sqrt(z0.shape[1]))
            img = G(z=torch.cat([zt0, zt1]) * scale, c=torch.cat([c, c]), noise_mode='const', force_fp32=True, **self.G_kwargs)

        if self.crop:
            assert img.shape[2] == img.shape[3]
            c8 = img.shape[2] // 8
            img = img[:, :, c8 * 3 : c8 * 7, c8 * 2 : c8 * 6]
        factor = G.img_resolution // 256
        if factor > 1:
            img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5])
        img = (img + 1) * (255 / 2)
        if img.shape[1] == 1:
            img = img.repeat([1, 3, 1, 1])
        lpips0, lpips1 = self.vgg16(img, resize_images=False, return_lpips=True).chunk(2)
        return (lpips0 - lpips1).square().sum(dim=1) / eps ** 2

#----------------------------------------------------------------------------

def percentile_mean(dist: np.ndarray) -> float:
    """Mean of the distances within the 1st-99th percentile (inclusive), as StyleGAN."""
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())

def compute_ppl(opts: metric_utils.MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str,
                crop: bool, batch_size: int = 2) -> float:
    G = opts.G
    if G is None:
        raise ValueError('perceptual path length needs a generator (--network), not a set of images (--fakes)')
    if space == 'w' and not has_w_space(G):
        raise ValueError(f'{type(G).__name__} has no mapping/synthesis split (w space); use a ppl_z* metric')
    vgg16 = metric_utils.get_feature_detector('vgg16', opts.device, opts.detectors, opts.num_gpus, opts.rank)
    sampler = PPLSampler(G=G, G_kwargs=opts.G_kwargs, epsilon=epsilon, space=space, sampling=sampling, crop=crop, vgg16=vgg16)
    sampler.eval().requires_grad_(False).to(opts.device)
    label_source = metric_utils.construct_dataset(opts.dataset_kwargs) if G.c_dim > 0 else None
    noise_buffers = [buf for name, buf in sampler.G.named_buffers() if name.endswith('.noise_const')]

    # Batch b is drawn from an RNG seeded by (seed, b), so results do not depend on the number of processes.
    num_batches = -(-num_samples // batch_size)
    task = opts.progress.start('ppl samples', num_samples, opts.rank)
    dists = []
    for first in range(0, num_batches, opts.num_gpus):
        b = first + opts.rank
        dist = torch.zeros([batch_size], device=opts.device)
        if b < num_batches:
            gen = torch.Generator().manual_seed(int(np.random.default_rng([opts.seed, b]).integers(2 ** 62)))
            z = torch.randn([batch_size * 2, G.z_dim], generator=gen)
            t = torch.rand([batch_size], generator=gen) * (1 if sampling == 'full' else 0)
            c = torch.zeros([batch_size, G.c_dim])
            if G.c_dim > 0:
                idx = torch.randint(len(label_source), [batch_size], generator=gen)
                c = torch.as_tensor(np.stack([label_source.get_label(int(i)) for i in idx]), dtype=torch.float32)
            for buf in noise_buffers:
                buf.copy_(torch.randn(buf.shape, generator=gen))
            z0, z1 = z.to(opts.device).chunk(2)
            with torch.inference_mode():
                dist = sampler(z0, z1, t.to(opts.device), c.to(opts.device)).float()
        dists.append(metric_utils.all_gather_interleaved(dist[None], opts.num_gpus).flatten(0, 1) if opts.num_gpus > 1 else dist)
        task.update(min((first + opts.num_gpus) * batch_size, num_samples))
    dist = torch.cat(dists)[:num_samples].cpu().numpy()
    if opts.rank != 0:
        return float('nan')
    return percentile_mean(dist)

#----------------------------------------------------------------------------
