// Stage 2, per frame, forward: slice every 6D Gaussian at the view from the camera centre, shade
// it and project it (EWA), culling with radius 0 (DESIGN.md sections 4 and 6).
// PyTorch twin: render/reference/slice_project.py, slice_project. One thread per Gaussian,
// grid-stride, 64-bit indices; a NaN or Inf anywhere in a Gaussian culls it.
#include "gaussian_math.cuh"
#include "kernel_io.cuh"

using renderfm::load_mat3;
using renderfm::load_vec3;

extern "C" __global__ void slice_project_fwd(
    const long long n,                          // number of Gaussians
    const float* __restrict__ means,            // [N, 3] mu_p, RAS mm
    const float* __restrict__ dir_means,        // [N, 3] mu_d (normalized here)
    const float* __restrict__ s_c,              // [N, 3, 3] RAS mm^2, from precompute
    const float* __restrict__ gains,            // [N, 3, 3] K, mm
    const float* __restrict__ s_dd_inv,         // [N, 3, 3] S_dd^-1
    const float* __restrict__ opacity_logits,   // [N]
    const float* __restrict__ rgb,              // [N, 3] albedo in [0, 1]
    const float* __restrict__ sh,               // [N, 9] scalar shading, SH degree 2
    const float* __restrict__ specular_sh,      // [N, 9] white specular light, SH degree 2
    const float* __restrict__ world_to_camera,  // [4, 4] RAS mm -> camera mm (OpenCV)
    const float* __restrict__ intrinsics,       // [3, 3] px
    const float* __restrict__ camera_centre,    // [3] RAS mm
    const int width,                            // image size, px
    const int height,
    float* __restrict__ means2d,    // [N, 2] px
    float* __restrict__ conics,     // [N, 3] a, b, c of the inverse 2D covariance, 1/px^2
    float* __restrict__ depths,     // [N] camera z, mm
    int* __restrict__ radii,        // [N] px, 0 = culled
    float* __restrict__ opacities,  // [N] alpha_c x coverage factor
    float* __restrict__ colors) {   // [N, 3] rgb * max(0, S(v)) + max(0, W(v))
  const renderfm::Camera cam = renderfm::make_camera(world_to_camera, intrinsics, width, height);
  const renderfm::Vec3 centre = load_vec3(camera_centre, 0);
  const renderfm::Vec3 axis = renderfm::view_axis(cam);
  for (long long g = renderfm::first_index(); g < n; g += renderfm::index_stride()) {
    renderfm::Vec3 mu_c;
    float alpha;
    renderfm::slice_gaussian(load_vec3(means, g), load_vec3(dir_means, g), load_mat3(gains, g),
                             load_mat3(s_dd_inv, g), opacity_logits[g], centre, &mu_c, &alpha);
    float coeffs[9], white[9];
    for (int k = 0; k < 9; ++k) coeffs[k] = sh[9 * g + k];
    for (int k = 0; k < 9; ++k) white[k] = specular_sh[9 * g + k];
    const renderfm::Vec3 color = renderfm::shade_gaussian(axis, load_vec3(rgb, g), coeffs, white);
    const renderfm::Projection proj =
        renderfm::project_gaussian(mu_c, load_mat3(s_c, g), alpha, color, cam);

    means2d[2 * g] = proj.mean2d.x;
    means2d[2 * g + 1] = proj.mean2d.y;
    conics[3 * g] = proj.conic.a;
    conics[3 * g + 1] = proj.conic.b;
    conics[3 * g + 2] = proj.conic.c;
    depths[g] = proj.depth;
    radii[g] = proj.radius;
    opacities[g] = proj.opacity;
    renderfm::store_vec3(colors, g, color);
  }
}
