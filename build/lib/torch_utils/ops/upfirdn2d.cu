// CUDA kernel of upfirdn2d: a straightforward generic kernel, one thread per output pixel.
// Output pixel (oy, ox) correlates the taps with the window of the zero-inserted, padded
// image starting at (oy * downy, ox * downx); taps that land on inserted zeros or on the
// padding are skipped, so nothing is ever materialised.

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include "upfirdn2d.h"

template <typename T>
__global__ void upfirdn2d_kernel(const T* __restrict__ x, const float* __restrict__ f, T* __restrict__ y,
                                 int num_images, int in_h, int in_w, int out_h, int out_w, int fh, int fw,
                                 int upx, int upy, int downx, int downy, int padx0, int pady0, bool flip_filter,
                                 at::opmath_type<T> gain)
{
    using A = at::opmath_type<T>;
    int total = num_images * out_h * out_w;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += blockDim.x * gridDim.x)
    {
        int ox = idx % out_w;
        int oy = (idx / out_w) % out_h;
        int image = idx / (out_w * out_h);
        const T* src = x + (int64_t)image * in_h * in_w;
        A acc = 0;
        for (int a = 0; a < fh; a++)
        {
            int u = oy * downy + a - pady0; // Row in the zero-inserted image.
            if (u < 0 || u % upy != 0 || u / upy >= in_h)
                continue;
            int iy = u / upy;
            for (int b = 0; b < fw; b++)
            {
                int v = ox * downx + b - padx0; // Column in the zero-inserted image.
                if (v < 0 || v % upx != 0 || v / upx >= in_w)
                    continue;
                // Convolution = correlation with the flipped taps.
                float tap = flip_filter ? f[a * fw + b] : f[(fh - 1 - a) * fw + (fw - 1 - b)];
                acc += (A)src[iy * in_w + v / upx] * (A)tap;
            }
        }
        y[idx] = (T)(acc * gain);
    }
}

torch::Tensor upfirdn2d_cuda(torch::Tensor x, torch::Tensor f, int upx, int upy, int downx, int downy,
                             int padx0, int padx1, int pady0, int pady1, bool flip_filter, double gain)
{
    const at::cuda::OptionalCUDAGuard device_guard(x.device());
    int num_images = (int)(x.size(0) * x.size(1));
    int in_h = (int)x.size(2), in_w = (int)x.size(3);
    int fh = (int)f.size(0), fw = (int)f.size(1);
    int out_h = (in_h * upy + pady0 + pady1 - fh) / downy + 1;
    int out_w = (in_w * upx + padx0 + padx1 - fw) / downx + 1;
    torch::Tensor y = torch::empty({x.size(0), x.size(1), out_h, out_w}, x.options());
    int total = num_images * out_h * out_w;
    const int threads = 256;
    const int blocks = std::min((total + threads - 1) / threads, 65536);
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "upfirdn2d_cuda", [&]
    {
        upfirdn2d_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
            x.data_ptr<scalar_t>(), f.data_ptr<float>(), y.data_ptr<scalar_t>(), num_images, in_h, in_w, out_h, out_w,
            fh, fw, upx, upy, downx, downy, padx0, pady0, flip_filter, (at::opmath_type<scalar_t>)gain);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return y;
}
