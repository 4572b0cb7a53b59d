// Host harness for gaussian_math.cuh: runs every per-Gaussian function on the CPU so that
// Testing/test_cuda_math_host.py can compare it with the PyTorch reference.
//
// Usage: harness IN OUT. IN holds int32 {n, p, width, height, tile_size}, then (float32 unless
// marked) world_to_camera [16], intrinsics [9], camera_centre [3], and per Gaussian log_scales
// [n, 6], corr_logits [n, 15], means [n, 3], dir_means [n, 3], s_c [n, 9], gains [n, 9],
// s_dd_inv [n, 9], opacity_logits [n], rgb [n, 3], sh [n, 9], specular_sh [n, 9], means2d
// [n, 2], radii [n] int32;
// then per pixel sample mean2d [p, 2], conic [p, 3], opacity [p], pixel [p, 2] int32.
// OUT receives precompute's s_c, gains, s_dd_inv [n, 9]; slice's mu_c [n, 3], alpha [n];
// projection's means2d [n, 2], conics [n, 3], depths [n], opacities [n], colors [n, 3],
// radii [n] int32;
// tile_rect's rects [n, 4] int32 (from the input means2d and radii); pixel_alpha [p].
// Stages read the reference's own inputs, so each is checked alone.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gaussian_math.cuh"
#include "harness_arrays.h"
#include "harness_io.h"

using namespace renderfm;
using harness::mat3;
using harness::put;
using harness::read;
using harness::vec3;
using harness::write;

int main(int argc, char** argv) {
  if (!harness::open_files(argc, argv, "harness")) return 2;
  const std::vector<int32_t> header = read<int32_t>(5);
  const std::size_t n = header[0], p = header[1];
  const int width = header[2], height = header[3], tile_size = header[4];
  const auto w2c = read<float>(16), intrinsics = read<float>(9), centre = read<float>(3);
  const auto log_scales = read<float>(6 * n), corr_logits = read<float>(15 * n);
  const auto means = read<float>(3 * n), dir_means = read<float>(3 * n);
  const auto s_c = read<float>(9 * n), gains = read<float>(9 * n), s_dd_inv = read<float>(9 * n);
  const auto opacity_logits = read<float>(n), rgb = read<float>(3 * n), sh = read<float>(9 * n);
  const auto specular_sh = read<float>(9 * n);
  const auto ref_means2d = read<float>(2 * n);
  const auto ref_radii = read<int32_t>(n);
  const auto px_means = read<float>(2 * p), px_conics = read<float>(3 * p);
  const auto px_opacity = read<float>(p);
  const auto pixels = read<int32_t>(2 * p);

  const Camera cam = make_camera(w2c.data(), intrinsics.data(), width, height);
  const Vec3 camera_centre = vec3(centre, 0);
  std::vector<float> out_sc(9 * n), out_gain(9 * n), out_inv(9 * n), mu_c(3 * n), alpha(n);
  std::vector<float> means2d(2 * n), conics(3 * n), depths(n), opacities(n), colors(3 * n);
  std::vector<float> pixel_alphas(p);
  std::vector<int32_t> radii(n), rects(4 * n);
  for (std::size_t g = 0; g < n; ++g) {
    Mat3 cov, gain, dd_inv;
    precompute_gaussian(&log_scales[6 * g], &corr_logits[15 * g], &cov, &gain, &dd_inv);
    put(out_sc, g, cov.m, 9);
    put(out_gain, g, gain.m, 9);
    put(out_inv, g, dd_inv.m, 9);

    Vec3 sliced;
    slice_gaussian(vec3(means, g), vec3(dir_means, g), mat3(gains, g), mat3(s_dd_inv, g),
                   opacity_logits[g], camera_centre, &sliced, &alpha[g]);
    put(mu_c, g, {sliced.x, sliced.y, sliced.z});
    const Vec3 color =
        shade_gaussian(view_axis(cam), vec3(rgb, g), &sh[9 * g], &specular_sh[9 * g]);
    const Projection proj = project_gaussian(sliced, mat3(s_c, g), alpha[g], color, cam);
    put(means2d, g, {proj.mean2d.x, proj.mean2d.y});
    put(conics, g, {proj.conic.a, proj.conic.b, proj.conic.c});
    put(colors, g, {color.x, color.y, color.z});
    depths[g] = proj.depth;
    opacities[g] = proj.opacity;
    radii[g] = proj.radius;

    tile_rect({ref_means2d[2 * g], ref_means2d[2 * g + 1]}, ref_radii[g], width, height, tile_size,
              &rects[4 * g]);
  }
  for (std::size_t k = 0; k < p; ++k) {
    const Conic conic = {px_conics[3 * k], px_conics[3 * k + 1], px_conics[3 * k + 2]};
    pixel_alphas[k] = pixel_alpha({px_means[2 * k], px_means[2 * k + 1]}, conic, px_opacity[k],
                                  pixels[2 * k], pixels[2 * k + 1]);
  }
  write(out_sc), write(out_gain), write(out_inv), write(mu_c), write(alpha);
  write(means2d), write(conics), write(depths), write(opacities), write(colors), write(radii);
  write(rects);
  write(pixel_alphas);
  return harness::close_output();
}
