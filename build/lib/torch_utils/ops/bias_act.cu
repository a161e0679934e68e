// CUDA kernel of bias_act: one thread per element, grid-stride loop. The activation is
// evaluated together with its first and second derivatives; `grad` selects which one,
// times gain, masked by the clamp, is written (see bias_act.h).

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include "bias_act.h"

// Value v, first derivative d1 and second derivative d2 of the activation at z.
template <typename A>
__device__ __forceinline__ void activation(int act, A z, A alpha, A& v, A& d1, A& d2)
{
    const A one = 1, zero = 0;
    switch (act)
    {
    case 1: v = z; d1 = one; d2 = zero; break;
    case 2: v = z > zero ? z : zero; d1 = z > zero ? one : zero; d2 = zero; break;
    case 3: v = z > zero ? z : alpha * z; d1 = z > zero ? one : alpha; d2 = zero; break;
    case 4: { A t = tanh(z); v = t; d1 = one - t * t; d2 = -2 * t * d1; } break;
    case 5: { A s = one / (one + exp(-z)); v = s; d1 = s * (one - s); d2 = d1 * (one - 2 * s); } break;
    case 6: if (z > zero) { v = z; d1 = one; d2 = zero; } else { A e = exp(z); v = e - one; d1 = e; d2 = e; } break;
    case 7:
    {
        const A scale = (A)1.0507009873554804934193349852946, a = (A)1.6732632423543772848170429916717;
        if (z > zero) { v = scale * z; d1 = scale; d2 = zero; }
        else { A e = exp(z); v = scale * a * (e - one); d1 = scale * a * e; d2 = d1; }
    } break;
    case 8:
    {
        A s = one / (one + exp(-z));
        v = z > (A)20 ? z : log1p(exp(z)); // Same threshold as torch.nn.functional.softplus.
        d1 = s; d2 = s * (one - s);
    } break;
    case 9:
    {
        A s = one / (one + exp(-z)), ds = s * (one - s);
        v = z * s; d1 = s + z * ds; d2 = ds * (2 + z * (one - 2 * s));
    } break;
    default: v = d1 = d2 = zero;
    }
}

template <typename T>
__global__ void bias_act_kernel(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ dy,
                                T* __restrict__ out, int64_t n, int64_t bias_stride, int64_t bias_size, int grad, int act,
                                at::opmath_type<T> alpha, at::opmath_type<T> gain, at::opmath_type<T> clamp)
{
    using A = at::opmath_type<T>;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x)
    {
        A z = (A)x[i];
        if (b != nullptr)
            z += (A)b[(i / bias_stride) % bias_size];
        A v, d1, d2;
        activation<A>(act, z, alpha, v, d1, d2);
        A y = v * gain;
        A result;
        if (grad == 0) // Like torch.clamp: NaN passes through.
            result = (clamp >= 0 && y > clamp) ? clamp : (clamp >= 0 && y < -clamp) ? -clamp : y;
        else // Like torch.clamp's gradient: passes where -clamp <= y <= clamp.
            result = (!(clamp >= 0) || (y >= -clamp && y <= clamp)) ? (A)dy[i] * gain * (grad == 1 ? d1 : d2) : (A)0;
        out[i] = (T)result;
    }
}

torch::Tensor bias_act_cuda(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int grad, int dim, int act,
                            double alpha, double gain, double clamp)
{
    const at::cuda::OptionalCUDAGuard device_guard(x.device());
    torch::Tensor out = torch::empty_like(x);
    int64_t n = x.numel();
    int64_t bias_size = 1, bias_stride = 1;
    if (b.numel() > 0)
    {
        bias_size = x.size(dim);
        for (int64_t d = dim + 1; d < x.dim(); d++)
            bias_stride *= x.size(d);
    }
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "bias_act_cuda", [&]
    {
        using A = at::opmath_type<scalar_t>; // Parameters in the compute type: double stays double.
        bias_act_kernel<scalar_t><<<(unsigned int)blocks, threads, 0, stream>>>(
            x.data_ptr<scalar_t>(), b.numel() > 0 ? b.data_ptr<scalar_t>() : nullptr,
            grad > 0 ? dy.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(),
            n, bias_stride, bias_size, grad, act, (A)alpha, (A)gain, (A)clamp);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}
