// Python binding and argument checks of the bias_act CUDA plugin.

#include "bias_act.h"

static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int64_t grad, int64_t dim,
                              int64_t act, double alpha, double gain, double clamp)
{
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(x.is_contiguous(), "bias_act: x must be contiguous");
    TORCH_CHECK(x.numel() > 0, "bias_act: x must not be empty");
    TORCH_CHECK(grad >= 0 && grad <= 2, "bias_act: grad must be 0, 1 or 2");
    TORCH_CHECK(act >= 1 && act <= 9, "bias_act: unknown activation index");
    if (b.numel() > 0)
    {
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b.device() == x.device() && b.dtype() == x.dtype(), "bias_act: b must be on x's device, of x's dtype");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must have x.size(dim) elements");
        TORCH_CHECK(b.is_contiguous(), "bias_act: b must be contiguous");
    }
    if (grad > 0)
    {
        TORCH_CHECK(dy.device() == x.device() && dy.dtype() == x.dtype(), "bias_act: dy must be on x's device, of x's dtype");
        TORCH_CHECK(dy.sizes() == x.sizes() && dy.is_contiguous(), "bias_act: dy must be contiguous and shaped like x");
    }
    return bias_act_cuda(x, b, dy, (int)grad, (int)dim, (int)act, alpha, gain, clamp);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "Fused bias + activation + gain + clamp, and its first two derivatives");
}
