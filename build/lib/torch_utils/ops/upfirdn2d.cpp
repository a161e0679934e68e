// Python binding and argument checks of the upfirdn2d CUDA plugin.

#include "upfirdn2d.h"

static torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                               int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, bool flip_filter, double gain)
{
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor");
    TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "upfirdn2d: x must be a contiguous [N, C, H, W] tensor");
    TORCH_CHECK(f.device() == x.device() && f.scalar_type() == at::kFloat, "upfirdn2d: f must be float32 on x's device");
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous() && f.numel() > 0, "upfirdn2d: f must be a contiguous 2-D filter");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");
    TORCH_CHECK(x.numel() <= INT_MAX, "upfirdn2d: x is too large for 32-bit indexing");
    int64_t out_h = (x.size(2) * upy + pady0 + pady1 - f.size(0)) / downy + 1;
    int64_t out_w = (x.size(3) * upx + padx0 + padx1 - f.size(1)) / downx + 1;
    TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: empty output");
    TORCH_CHECK(x.size(0) * x.size(1) * out_h * out_w <= INT_MAX, "upfirdn2d: output too large for 32-bit indexing");
    return upfirdn2d_cuda(x, f, (int)upx, (int)upy, (int)downx, (int)downy, (int)padx0, (int)padx1, (int)pady0,
                          (int)pady1, flip_filter, gain);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter and downsample a batch of images");
}
