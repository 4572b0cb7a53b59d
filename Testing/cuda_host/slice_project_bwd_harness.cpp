// Host harness for slice_project_bwd.cu's per-Gaussian math: runs slice_project_bwd for every
// Gaussian on the CPU, so that Testing/test_cuda_slice_project_host.py can compare it with torch
// autograd through the PyTorch reference's slice_project.
//
// Usage: slice_project_bwd_harness IN OUT. IN holds int32 {n, width, height}, then float32
// world_to_camera [16], intrinsics [9], camera_centre [3], and per Gaussian means [n, 3],
// dir_means [n, 3], s_c [n, 9], gains [n, 9], s_dd_inv [n, 9], opacity_logits [n], rgb [n, 3],
// sh [n, 9], specular_sh [n, 9], then the cotangents dL/d means2d [n, 2], conics [n, 3], depths
// [n], opacities [n], colors [n, 3]. OUT receives float32 dL/d means [n, 3], dir_means [n, 3],
// s_c [n, 9], gains [n, 9], s_dd_inv [n, 9], opacity_logits [n], rgb [n, 3], sh [n, 9],
// specular_sh [n, 9].
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gaussian_math_bwd.cuh"
#include "harness_arrays.h"
#include "harness_io.h"

using namespace renderfm;
using harness::mat3;
using harness::put;
using harness::read;
using harness::vec3;
using harness::write;

int main(int argc, char** argv) {
  if (!harness::open_files(argc, argv, "slice_project_bwd_harness")) return 2;
  const std::vector<int32_t> header = read<int32_t>(3);
  const std::size_t n = header[0];
  const auto w2c = read<float>(16), intrinsics = read<float>(9), centre = read<float>(3);
  const auto means = read<float>(3 * n), dir_means = read<float>(3 * n);
  const auto s_c = read<float>(9 * n), gains = read<float>(9 * n), s_dd_inv = read<float>(9 * n);
  const auto opacity_logits = read<float>(n), rgb = read<float>(3 * n), sh = read<float>(9 * n);
  const auto specular_sh = read<float>(9 * n);
  const auto g_means2d = read<float>(2 * n), g_conics = read<float>(3 * n);
  const auto g_depths = read<float>(n), g_opacities = read<float>(n);
  const auto g_colors = read<float>(3 * n);

  const Camera cam = make_camera(w2c.data(), intrinsics.data(), header[1], header[2]);
  std::vector<float> means_out(3 * n), dirs_out(3 * n), s_c_out(9 * n), gains_out(9 * n);
  std::vector<float> inv_out(9 * n), logits_out(n), rgb_out(3 * n), sh_out(9 * n);
  std::vector<float> specular_out(9 * n);
  for (std::size_t g = 0; g < n; ++g) {
    const ProjectionGrad grad = {{g_means2d[2 * g], g_means2d[2 * g + 1]},
                                 {g_conics[3 * g], g_conics[3 * g + 1], g_conics[3 * g + 2]},
                                 g_depths[g],
                                 g_opacities[g],
                                 vec3(g_colors, g)};
    const GaussianGrad d =
        slice_project_bwd(vec3(means, g), vec3(dir_means, g), mat3(s_c, g), mat3(gains, g),
                          mat3(s_dd_inv, g), opacity_logits[g], vec3(rgb, g), &sh[9 * g],
                          &specular_sh[9 * g], vec3(centre, 0), cam, grad);
    put(means_out, g, d.mean);
    put(dirs_out, g, d.dir_mean);
    put(s_c_out, g, d.s_c.m, 9);
    put(gains_out, g, d.gain.m, 9);
    put(inv_out, g, d.s_dd_inv.m, 9);
    logits_out[g] = d.opacity_logit;
    put(rgb_out, g, d.rgb);
    put(sh_out, g, d.sh, 9);
    put(specular_out, g, d.specular_sh, 9);
  }
  write(means_out), write(dirs_out), write(s_c_out), write(gains_out), write(inv_out);
  write(logits_out), write(rgb_out), write(sh_out), write(specular_out);
  return harness::close_output();
}
