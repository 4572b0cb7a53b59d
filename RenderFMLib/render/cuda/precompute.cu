// Stage 1, once per model: the view-independent slicing terms of every 6D Gaussian
// (S_c, K, S_dd^-1; DESIGN.md section 4). PyTorch twin: render/reference/precompute.py.
// One thread per Gaussian, grid-stride, 64-bit indices.
#include "gaussian_math.cuh"
#include "kernel_io.cuh"

extern "C" __global__ void precompute(
    const long long n,                      // number of Gaussians
    const float* __restrict__ log_scales,   // [N, 6] log s, position then direction axes
    const float* __restrict__ corr_logits,  // [N, 15] strictly-lower entries of U, row-major
    float* __restrict__ s_c,                // [N, 3, 3] sliced covariance, RAS mm^2
    float* __restrict__ gains,              // [N, 3, 3] K = S_pd S_dd^-1, mm
    float* __restrict__ s_dd_inv) {         // [N, 3, 3] S_dd^-1
  for (long long g = renderfm::first_index(); g < n; g += renderfm::index_stride()) {
    float scales[6], logits[15];
    for (int k = 0; k < 6; ++k) scales[k] = log_scales[6 * g + k];
    for (int k = 0; k < 15; ++k) logits[k] = corr_logits[15 * g + k];
    renderfm::Mat3 cov, gain, dd_inv;
    renderfm::precompute_gaussian(scales, logits, &cov, &gain, &dd_inv);
    renderfm::store_mat3(s_c, g, cov);
    renderfm::store_mat3(gains, g, gain);
    renderfm::store_mat3(s_dd_inv, g, dd_inv);
  }
}
