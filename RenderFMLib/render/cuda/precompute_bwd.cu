// Stage 1, backward: dL/d (log_scales, corr_logits) from dL/d precompute's S_c, K and S_dd^-1
// (DESIGN.md section 4). PyTorch twin: torch autograd through render/reference/precompute.py,
// precompute (precompute_backward); the math is precompute_gaussian_bwd in gaussian_math_bwd.cuh.
// One thread per Gaussian, grid-stride, 64-bit indices; each thread writes only its own
// Gaussian's gradients. A Gaussian whose cotangents are all zero gets zeros.
#include "gaussian_math_bwd.cuh"
#include "kernel_io.cuh"

extern "C" __global__ void precompute_bwd(
    const long long n,                        // number of Gaussians
    const float* __restrict__ log_scales,     // [N, 6] log s, position then direction axes
    const float* __restrict__ corr_logits,    // [N, 15] strictly-lower entries of U, row-major
    const float* __restrict__ grad_s_c,       // [N, 3, 3] dL/d S_c
    const float* __restrict__ grad_gains,     // [N, 3, 3] dL/d K
    const float* __restrict__ grad_s_dd_inv,  // [N, 3, 3] dL/d S_dd^-1
    float* __restrict__ grad_log_scales,      // [N, 6]
    float* __restrict__ grad_corr_logits) {   // [N, 15]
  for (long long g = renderfm::first_index(); g < n; g += renderfm::index_stride()) {
    float scales[6], logits[15], g_scales[6], g_logits[15];
    for (int k = 0; k < 6; ++k) scales[k] = log_scales[6 * g + k];
    for (int k = 0; k < 15; ++k) logits[k] = corr_logits[15 * g + k];
    renderfm::precompute_gaussian_bwd(scales, logits, renderfm::load_mat3(grad_s_c, g),
                                      renderfm::load_mat3(grad_gains, g),
                                      renderfm::load_mat3(grad_s_dd_inv, g), g_scales, g_logits);
    for (int k = 0; k < 6; ++k) grad_log_scales[6 * g + k] = g_scales[k];
    for (int k = 0; k < 15; ++k) grad_corr_logits[15 * g + k] = g_logits[k];
  }
}
