"""The StyleGAN2 loss: non-saturating logistic GAN loss with lazy R1 and path-length
regularisation, style mixing, and an optional blur of the discriminator's inputs.

- Non-saturating logistic loss: Goodfellow et al., "Generative Adversarial Nets", 2014,
  section 3; G minimises softplus(-D(G(z))), D minimises softplus(D(G(z))) + softplus(-D(x)).
- R1: Mescheder et al., "Which Training Methods for GANs do actually Converge?", 2018, eq. 9:
  gamma/2 * E ||grad_x D(x)||^2 on real images.
- Lazy regularisation, path-length regularisation and style mixing: Karras et al.,
  "Analyzing and Improving the Image Quality of StyleGAN", 2020, sections 3.1 and 3.2 (eq. 4):
  E (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(H W) and a the running mean of the length.
- Blur of D's inputs that fades out: Karras et al., "Alias-Free Generative Adversarial
  Networks", 2021, appendix (StyleGAN3-R: sigma 10 px fading over the first 200 kimg at batch 32),
  with StyleGAN3's filter taps 2^-(t/sigma)^2.

Works with any generator of the contract in networks/__init__.py: it calls
`G.mapping(z, c, update_emas=...)` and `G.synthesis(ws, update_emas=...)` (update_emas=True
only in the Dmain fake pass, as StyleGAN3), mixes styles when `G.num_ws >= 2` (for the FPA
this mixes painting steps: the first k strokes from one latent, the rest from another) and
takes path lengths through ws. Statistics are reported under StyleGAN2-ADA's names.
"""

import contextlib

import numpy as np
import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}   # --precision -> autocast dtype.

def autocast_context(device: torch.device, precision: str):
    """The autocast context of `precision` ('fp32' = no autocast). fp16 needs CUDA."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision="{precision}": expected one of {", ".join(PRECISIONS)}')
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    if dtype == torch.float16 and device.type != 'cuda':
        raise ValueError(f'precision="fp16" needs a CUDA device (this run uses {device.type}); use bf16 or fp32')
    return torch.autocast(device_type=device.type, dtype=dtype)

def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with taps 2^-(t/sigma)^2 (StyleGAN3's: a Gaussian of standard
    deviation sigma / sqrt(2 ln 2)) for |t| <= floor(3 sigma), normalised, zero padding (same
    size out); differentiable to any order. sigma < 1/3 returns `img` unchanged."""
    radius = int(np.floor(sigma * 3))
    if radius <= 0:
        return img
    taps = torch.arange(-radius, radius + 1, device=img.device, dtype=torch.float32)
    f = (taps / sigma).square().neg().exp2()
    f = (f / f.sum()).to(img.dtype)
    C = img.shape[1]
    img = torch.nn.functional.conv2d(img, f.reshape(1, 1, 1, -1).repeat(C, 1, 1, 1), padding=(0, radius), groups=C)
    img = torch.nn.functional.conv2d(img, f.reshape(1, 1, -1, 1).repeat(C, 1, 1, 1), padding=(radius, 0), groups=C)
    return img

def mode_seeking_term(img: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking regularisation (Mao et al., "Mode Seeking Generative Adversarial Networks
    for Diverse Image Synthesis", CVPR 2019, eq. 3), as a loss to minimise: the first half of
    the batch is paired with the second, and for the pairs

        term = 1 / (mean_pairs( mean|G(z1) - G(z2)| / mean|z1 - z2| ) + eps),

    which grows when two latents give images closer than their distance in z warrants: a
    collapsing generator pays for it, a varied one hardly at all. img [N, C, H, W], z [N, z_dim];
    N >= 2 (an odd sample is left out)."""
    half = img.shape[0] // 2
    assert half >= 1 and z.shape[0] == img.shape[0], (img.shape, z.shape)
    img_dist = (img[:half] - img[half : 2 * half]).abs().flatten(1).mean(1)
    z_dist = (z[:half] - z[half : 2 * half]).abs().flatten(1).mean(1).to(img_dist.dtype)
    return 1 / ((img_dist / z_dist).mean() + eps)

#----------------------------------------------------------------------------

class StyleGAN2Loss:
    """accumulate_gradients(phase, ...) runs one phase of one chunk and calls backward();
    the loop owns zero_grad, gradient sync and the optimizer step."""

    PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')

    def __init__(self,
        device,                         # torch.device the networks live on.
        G,                              # Generator (the contract of networks/__init__.py).
        D,                              # Discriminator: D(img, c) -> logits [N, 1].
        augment_pipe        = None,     # ADA pipe applied to every image D sees, None = no augmentation.
        r1_gamma            = 10,       # R1 weight gamma; 0 = no R1 (Dreg becomes a no-op).
        style_mixing_prob   = 0,        # Probability of mixing two latents per chunk (needs num_ws >= 2).
        pl_weight           = 0,        # Path-length regularisation weight; 0 = none (Greg becomes a no-op).
        pl_batch_shrink     = 2,        # Greg runs on chunk / pl_batch_shrink samples.
        pl_decay            = 0.01,     # Decay of the running mean of path lengths.
        blur_init_sigma     = 0,        # Blur sigma of D's inputs at the start, 0 = no blur.
        blur_fade_kimg      = 0,        # The blur fades linearly to 0 over this many kimg.
        pl_no_weight_grad   = False,    # StyleGAN3's option: no weight gradients in the path-length gradient (see below).
        mode_seeking        = 0,        # Weight of the mode-seeking term in Gmain (mode_seeking_term), 0 = none.
        precision           = 'fp32',   # 'fp32' | 'bf16' | 'fp16': autocast of G and D forward passes.
    ):
        self.device = torch.device(device)
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob if G.num_ws >= 2 else 0  # Capability: rows of ws to mix.
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.blur_init_sigma = blur_init_sigma
        self.blur_fade_kimg = blur_fade_kimg
        self.pl_no_weight_grad = pl_no_weight_grad
        self.mode_seeking = mode_seeking
        self.precision = precision
        autocast_context(self.device, precision)   # Validates early (fp16 on CPU -> ValueError).
        self.pl_mean = torch.zeros([], device=self.device)

    #--- Running statistics (what an exact resume needs of the loss).

    def state_dict(self) -> dict:
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_state_dict(self, state: dict) -> None:
        self.pl_mean.copy_(torch.as_tensor(state['pl_mean']))

    #--- Building blocks.

    def run_G(self, z, c, update_emas=False, need_ws_grad=False):
        with autocast_context(self.device, self.precision):
            ws = self.G.mapping(z, c, update_emas=update_emas)
            if self.style_mixing_prob > 0:
                # One cutoff per chunk: steps [cutoff, num_ws) come from a second latent.
                num_ws = ws.shape[1]
                cutoff = int(torch.randint(1, num_ws, [], device='cpu'))
                if float(torch.rand([], device='cpu')) >= self.style_mixing_prob:
                    cutoff = num_ws
                if cutoff < num_ws:
                    ws = ws.clone()
                    ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), c, update_emas=False)[:, cutoff:]
            if need_ws_grad and not ws.requires_grad:
                ws = ws.detach().requires_grad_(True)   # A mapping without parameters (e.g. the FPA's with c_dim=0).
            img = self.G.synthesis(ws, update_emas=update_emas)
        return img.float(), ws

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_init_sigma == 0:
            return 0.0
        fade = 1 - cur_nimg / (self.blur_fade_kimg * 1e3) if self.blur_fade_kimg > 0 else 0
        return max(fade, 0) * self.blur_init_sigma

    def run_D(self, img, c, blur_sigma=0.0, update_emas=False):
        img = gaussian_blur(img, blur_sigma)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with autocast_context(self.device, self.precision):
            logits = self.D(img, c, update_emas=update_emas)
        return logits.float()

    def _backward(self, loss: torch.Tensor, phase: str, gain: float) -> None:
        # A non-finite loss is counted (the loop logs it) and still backpropagated: the loop
        # neutralises non-finite gradients before the optimizer step.
        training_stats.report(f'Loss/nonfinite/{phase}', (~torch.isfinite(loss.detach())).sum().float())
        loss.mean().mul(gain).backward()

    #--- One phase of one chunk.

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        assert phase in self.PHASES, f'unknown phase "{phase}"'
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        blur_sigma = self.blur_sigma(cur_nimg)

        # Gmain: make D call the fakes real.
        if phase in ('Gmain', 'Gboth'):
            gen_img, _gen_ws = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Gmain = torch.nn.functional.softplus(-gen_logits)
            training_stats.report('Loss/G/loss', loss_Gmain)
            if self.mode_seeking > 0 and gen_z.shape[0] >= 2:
                loss_ms = mode_seeking_term(gen_img, gen_z)
                training_stats.report('Loss/G/mode_seeking', loss_ms)
                loss_Gmain = loss_Gmain + self.mode_seeking * loss_ms     # (A scalar: the same for every sample's row.)
            self._backward(loss_Gmain, 'Gmain', gain)

        # Greg: path-length regularisation through ws.
        if phase in ('Greg', 'Gboth'):
            batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            with conv2d_gradfix.differentiable_backward():  # The gradient below is differentiated.
                gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size], need_ws_grad=True)
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            # Upstream skips the conv weights' gradients here when pl_no_weight_grad is set, a speed-up
            # only (the gradient is taken w.r.t. ws); ours skips them always (conv2d_gradfix).
            with conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
                pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True,
                                               allow_unused=True)[0]
            if pl_grads is None:
                return  # ws does not reach the image through autograd (a frozen FPA under a trained U-Net): no path length.
            pl_lengths = pl_grads.float().square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean().detach(), self.pl_decay)
            self.pl_mean.copy_(pl_mean)
            pl_penalty = (pl_lengths - pl_mean).square()
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
            self._backward(loss_Gpl, 'Greg', gain)

        # Dmain, fakes: make D call the fakes fake. The only pass that advances G's EMAs (w_avg).
        if phase in ('Dmain', 'Dboth'):
            with torch.no_grad():
                gen_img, _gen_ws = self.run_G(gen_z, gen_c, update_emas=True)
            gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, update_emas=True)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dgen = torch.nn.functional.softplus(gen_logits)
            self._backward(loss_Dgen, 'Dgen', gain)

        # Dmain, reals, and Dreg (R1): one forward of D on the reals serves both.
        if phase in ('Dmain', 'Dreg', 'Dboth'):
            name = {'Dmain': 'Dreal', 'Dreg': 'Dr1', 'Dboth': 'Dreal_Dr1'}[phase]
            real_img_tmp = real_img.detach().requires_grad_(phase in ('Dreg', 'Dboth'))
            with conv2d_gradfix.differentiable_backward() if phase in ('Dreg', 'Dboth') else contextlib.nullcontext():
                real_logits = self.run_D(real_img_tmp, real_c, blur_sigma=blur_sigma)   # (R1 differentiates its gradient.)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign())

            loss_Dreal = 0
            if phase in ('Dmain', 'Dboth'):
                loss_Dreal = torch.nn.functional.softplus(-real_logits)
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)

            loss_Dr1 = 0
            if phase in ('Dreg', 'Dboth'):
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', loss_Dr1)

            self._backward(loss_Dreal + loss_Dr1, name, gain)

#----------------------------------------------------------------------------
