// Fused bias + activation + gain + clamp on CUDA: declarations shared by bias_act.cpp and
// bias_act.cu. See bias_act.py for the maths and the autograd composition.

#pragma once
#include <torch/extension.h>

// grad = 0: returns clamp(gain * act(x + b))
// grad = 1: returns dy * d/dz clamp(gain * act(z)) at z = x + b
// grad = 2: returns dy * d2/dz2 clamp(gain * act(z)) at z = x + b
// b may be empty (no bias); otherwise it has x.size(dim) elements. dy is ignored for grad = 0.
// act: 1 linear, 2 relu, 3 lrelu, 4 tanh, 5 sigmoid, 6 elu, 7 selu, 8 softplus, 9 swish.
// clamp < 0 disables clamping.
torch::Tensor bias_act_cuda(torch::Tensor x, torch::Tensor b, torch::Tensor dy, int grad, int dim, int act,
                            double alpha, double gain, double clamp);
