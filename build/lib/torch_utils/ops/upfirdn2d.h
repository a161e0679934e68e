// Upsample, FIR-filter and downsample on CUDA: declarations shared by upfirdn2d.cpp and
// upfirdn2d.cu. See upfirdn2d.py for the definition.

#pragma once
#include <torch/extension.h>

// x: [N, C, H, W] contiguous; f: 2-D float32 [fh, fw] contiguous, on x's device.
// Returns [N, C, (H * upy + pady0 + pady1 - fh) / downy + 1, (W * upx + padx0 + padx1 - fw) / downx + 1].
// flip_filter = false convolves with f (like scipy.signal.upfirdn); true correlates.
torch::Tensor upfirdn2d_cuda(torch::Tensor x, torch::Tensor f, int upx, int upy, int downx, int downy,
                             int padx0, int padx1, int pady0, int pady1, bool flip_filter, double gain);
