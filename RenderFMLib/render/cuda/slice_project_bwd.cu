// Stage 2, per frame, backward: dL/d slice_project's inputs from dL/d its outputs, recomputing
// each Gaussian's forward (DESIGN.md sections 4 and 6). PyTorch twin: torch autograd through
// render/reference/slice_project.py, slice_project; the math is slice_project_bwd in
// gaussian_math_bwd.cuh. One thread per Gaussian, grid-stride, 64-bit indices; each thread
// writes only its own Gaussian's gradients (no atomics). A Gaussian whose cotangents are all
// zero (culled: in no tile) gets zeros, NaN or Inf ones included. The camera gets no gradient.
#include "gaussian_math_bwd.cuh"
#include "kernel_io.cuh"

using renderfm::load_mat3;
using renderfm::load_vec3;
using renderfm::store_mat3;
using renderfm::store_vec3;

extern "C" __global__ void slice_project_bwd(
    const long long n,                          // number of Gaussians
    const float* __restrict__ means,            // [N, 3] mu_p, RAS mm
    const float* __restrict__ dir_means,        // [N, 3] mu_d
    const float* __restrict__ s_c,              // [N, 3, 3] RAS mm^2
    const float* __restrict__ gains,            // [N, 3, 3] K, mm
    const float* __restrict__ s_dd_inv,         // [N, 3, 3] S_dd^-1
    const float* __restrict__ opacity_logits,   // [N]
    const float* __restrict__ rgb,              // [N, 3]
    const float* __restrict__ sh,               // [N, 9]
    const float* __restrict__ specular_sh,      // [N, 9]
    const float* __restrict__ world_to_camera,  // [4, 4] RAS mm -> camera mm (OpenCV)
    const float* __restrict__ intrinsics,       // [3, 3] px
    const float* __restrict__ camera_centre,    // [3] RAS mm
    const int width,                            // image size, px
    const int height,
    const float* __restrict__ grad_means2d,     // [N, 2] dL/d means2d
    const float* __restrict__ grad_conics,      // [N, 3]
    const float* __restrict__ grad_depths,      // [N]
    const float* __restrict__ grad_opacities,   // [N]
    const float* __restrict__ grad_colors,      // [N, 3]
    float* __restrict__ grad_means,             // [N, 3] dL/d means
    float* __restrict__ grad_dir_means,         // [N, 3]
    float* __restrict__ grad_s_c,               // [N, 3, 3]
    float* __restrict__ grad_gains,             // [N, 3, 3]
    float* __restrict__ grad_s_dd_inv,          // [N, 3, 3]
    float* __restrict__ grad_opacity_logits,    // [N]
    float* __restrict__ grad_rgb,               // [N, 3]
    float* __restrict__ grad_sh,                // [N, 9]
    float* __restrict__ grad_specular_sh) {     // [N, 9]
  const renderfm::Camera cam = renderfm::make_camera(world_to_camera, intrinsics, width, height);
  const renderfm::Vec3 centre = load_vec3(camera_centre, 0);
  for (long long g = renderfm::first_index(); g < n; g += renderfm::index_stride()) {
    const renderfm::ProjectionGrad grad = {
        {grad_means2d[2 * g], grad_means2d[2 * g + 1]},
        {grad_conics[3 * g], grad_conics[3 * g + 1], grad_conics[3 * g + 2]},
        grad_depths[g],
        grad_opacities[g],
        load_vec3(grad_colors, g)};
    float coeffs[9], white[9];
    for (int k = 0; k < 9; ++k) coeffs[k] = sh[9 * g + k];
    for (int k = 0; k < 9; ++k) white[k] = specular_sh[9 * g + k];
    const renderfm::GaussianGrad d =
        renderfm::slice_project_bwd(load_vec3(means, g), load_vec3(dir_means, g), load_mat3(s_c, g),
                                    load_mat3(gains, g), load_mat3(s_dd_inv, g), opacity_logits[g],
                                    load_vec3(rgb, g), coeffs, white, centre, cam, grad);
    store_vec3(grad_means, g, d.mean);
    store_vec3(grad_dir_means, g, d.dir_mean);
    store_mat3(grad_s_c, g, d.s_c);
    store_mat3(grad_gains, g, d.gain);
    store_mat3(grad_s_dd_inv, g, d.s_dd_inv);
    grad_opacity_logits[g] = d.opacity_logit;
    store_vec3(grad_rgb, g, d.rgb);
    for (int k = 0; k < 9; ++k) grad_sh[9 * g + k] = d.sh[k];
    for (int k = 0; k < 9; ++k) grad_specular_sh[9 * g + k] = d.specular_sh[k];
  }
}
