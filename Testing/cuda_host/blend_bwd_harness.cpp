// Host harness for blend_bwd.cu's per-pixel walk: for each 16x16 tile and each of its pixels,
// start from blend_fwd's outputs (start_pixel_bwd) and walk the tile's consumed instances back to
// front with blend_step_bwd, summing each Gaussian's gradients over pixels in float32 as the
// kernel's atomics do (in another order), so that Testing/test_cuda_blend_host.py can compare
// them with torch autograd through the PyTorch reference's blend.
//
// Usage: blend_bwd_harness IN OUT. IN holds blend_harness's input (int64 {n, m, width, height},
// float32 means2d [n, 2], conics [n, 3], colors [n, 3], opacities [n], depths [n],
// background [3]; int64 gaussian_ids [m], tile_ranges [tiles, 2]), then blend_fwd's outputs
// float32 alpha [H, W], depth [H, W], final_t [H, W], int32 n_consumed [H, W], then the
// cotangents float32 grad_rgb [H, W, 3], grad_alpha [H, W], grad_depth [H, W]. OUT receives
// float32 dL/d means2d [n, 2], conics [n, 3], opacities [n], colors [n, 3], depths [n].
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gaussian_math_bwd.cuh"
#include "harness_io.h"

using namespace renderfm;
using harness::read;
using harness::write;

namespace {

constexpr int TILE = TILE_SIZE;  // the blend kernels' tile side, px

struct Grads {
  std::vector<float> means2d, conics, opacities, colors, depths;
  explicit Grads(std::size_t n)
      : means2d(2 * n), conics(3 * n), opacities(n), colors(3 * n), depths(n) {}
  // Add one pixel's terms d to Gaussian g's sums.
  void add(std::size_t g, const FootprintGrad& d) {
    means2d[2 * g] += d.mean2d.x;
    means2d[2 * g + 1] += d.mean2d.y;
    conics[3 * g] += d.conic.a;
    conics[3 * g + 1] += d.conic.b;
    conics[3 * g + 2] += d.conic.c;
    opacities[g] += d.opacity;
    colors[3 * g] += d.color.x;
    colors[3 * g + 1] += d.color.y;
    colors[3 * g + 2] += d.color.z;
    depths[g] += d.depth;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (!harness::open_files(argc, argv, "blend_bwd_harness")) return 2;
  const std::vector<int64_t> header = read<int64_t>(4);
  const std::size_t n = header[0], m = header[1];
  const int width = static_cast<int>(header[2]), height = static_cast<int>(header[3]);
  const int tiles_x = (width + TILE - 1) / TILE, tiles_y = (height + TILE - 1) / TILE;
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  const auto means2d = read<float>(2 * n), conics = read<float>(3 * n);
  const auto colors = read<float>(3 * n), opacities = read<float>(n), depths = read<float>(n);
  const auto background = read<float>(3);
  const auto ids = read<int64_t>(m);
  const auto ranges = read<int64_t>(2 * static_cast<std::size_t>(tiles_x) * tiles_y);
  const auto alpha = read<float>(pixels), depth = read<float>(pixels);
  const auto final_t = read<float>(pixels);
  const auto consumed = read<int32_t>(pixels);
  const auto grad_rgb = read<float>(3 * pixels), grad_alpha = read<float>(pixels);
  const auto grad_depth = read<float>(pixels);
  const Vec3 bg = {background[0], background[1], background[2]};

  Grads sums(n);
  for (int tile = 0; tile < tiles_x * tiles_y; ++tile) {
    const int64_t start = ranges[2 * tile];
    for (int rank = 0; rank < TILE * TILE; ++rank) {
      const int px = (tile % tiles_x) * TILE + rank % TILE;
      const int py = (tile / tiles_x) * TILE + rank / TILE;
      if (px >= width || py >= height) continue;
      const std::size_t p = static_cast<std::size_t>(py) * width + px;
      PixelGradState state = start_pixel_bwd(
          final_t[p], alpha[p], depth[p], bg,
          {grad_rgb[3 * p], grad_rgb[3 * p + 1], grad_rgb[3 * p + 2]}, grad_alpha[p],
          grad_depth[p]);
      for (int64_t j = consumed[p] - 1; j >= 0; --j) {
        const int64_t g = ids[start + j];
        FootprintGrad d;
        if (blend_step_bwd(state, {means2d[2 * g], means2d[2 * g + 1]},
                           {conics[3 * g], conics[3 * g + 1], conics[3 * g + 2]}, opacities[g],
                           {colors[3 * g], colors[3 * g + 1], colors[3 * g + 2]}, depths[g], px,
                           py, &d))
          sums.add(static_cast<std::size_t>(g), d);
      }
    }
  }
  write(sums.means2d), write(sums.conics), write(sums.opacities), write(sums.colors);
  write(sums.depths);
  return harness::close_output();
}
