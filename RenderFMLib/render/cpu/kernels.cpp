// The render stages on the CPU: loops over Gaussians, tiles and pixels that call the same math
// as the CUDA kernels (../cuda/gaussian_math.cuh and gaussian_math_bwd.cuh, compiled here by the
// host C++ compiler), spread over a few threads. PyTorch twins: ../reference; pipeline.py wraps
// these functions in autograd and checks nothing (its caller does).
//
//   precompute         once per model: S_c, K, S_dd^-1                (precompute.cu)
//   precompute_bwd     per Gaussian: dL/d log-scales, correlations    (precompute_bwd.cu)
//   slice_project_fwd  per Gaussian: slice, shade, project             (slice_project_fwd.cu)
//   slice_project_bwd  per Gaussian, recomputing its forward           (slice_project_bwd.cu)
//   blend_fwd          per tile: its list front to back, every pixel   (blend_fwd.cu)
//   blend_bwd          per tile: back to front from blend_fwd's T      (blend_bwd.cu)
//   tile_instances     per Gaussian: how many tiles it touches         (reference/tile_keys.py)
//   tile_bin           per tile: its Gaussians, front to back          (reference/tile_keys.py)
//   may_reach          per Gaussian: can it reach the image at all     (reference/reach.py)
//
// The blend takes any tile size (the binning is the reference's tile_keys): a pixel walks only
// its tile's list, and the pixels of a tile walk it together (TileWalk), each Gaussian only over
// its box within the tile. A pixel stops where the CUDA kernel's pixel stops (blend_step's
// done), and blend_bwd walks the instances blend_fwd consumed, as the CUDA pair does. Work is
// dealt to the threads in fixed turns and the blend's gradients are summed per thread, then added
// in thread order: for a given thread count, every run gives the same bits.
// Arrays are row-major float32 (int64 ids and ranges, int32 radii and counts), as the CUDA kernels
// take them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "array_io.cuh"
#include "gaussian_math_bwd.cuh"
#include "parallel.h"
#include "tile_keys.cuh"

namespace {

using renderfm::load_mat3;
using renderfm::load_vec3;
using renderfm::Mat3;
using renderfm::parallel_chunks;
using renderfm::store_mat3;
using renderfm::store_vec3;
using renderfm::Vec3;

constexpr int64_t GAUSSIAN_GRAIN = 4096;  // Gaussians per chunk of the per-Gaussian stages
constexpr int64_t TILE_GRAIN = 4;         // tiles per chunk of the blend (a 128 px window: 64)

// The tile geometry shared by the blend's passes.
struct Tiles {
  int size, tiles_x, width, height;
  // pixel (px, py) of the tile's local index; false outside the image
  bool pixel(int64_t tile, int local, int* px, int* py) const {
    *px = static_cast<int>(tile % tiles_x) * size + local % size;
    *py = static_cast<int>(tile / tiles_x) * size + local / size;
    return *px < width && *py < height;
  }
};

struct Footprints {
  const float *means2d, *conics, *colors, *opacities, *depths;
  renderfm::Vec2 mean(int64_t g) const { return {means2d[2 * g], means2d[2 * g + 1]}; }
  renderfm::Conic conic(int64_t g) const {
    return {conics[3 * g], conics[3 * g + 1], conics[3 * g + 2]};
  }
  Vec3 color(int64_t g) const { return load_vec3(colors, g); }
};

// A tile's pixels, walked together (the blend's order): the tile's list is read once, and for
// each Gaussian only the pixels of the tile inside its box (the bounding box of the ellipse where
// its footprint exponent reaches `reach`) are looked at. Their exponents are computed in one loop
// the compiler vectorises, and only the pixels where it can reach alpha >= 1/255 take blend_step
// (or blend_step_bwd), which recomputes alpha exactly. The exponent is
// footprint_power(pixel_offset(...)) itself, and `reach` lies REACH_MARGIN below the exponent
// where opacity exp(power) = 1/255 (expf's and logf's rounding is ~1e-7 of that); the box is
// widened by BOX_SLACK, so no pixel that blend_step would take is skipped. Each pixel still sees
// the list in order, and each Gaussian's gradient sums take the pixels in order: the outputs are
// those of a walk pixel by pixel, bit for bit, at a fraction of the alpha tests' cost (a
// Gaussian's box covers about a sixth of the tile's pixels on average: measured 15 % on the
// sample's 1.5 mm CT-Chest-Contrast-Enhanced fine-tuning windows, 8 % within reach).
constexpr float REACH_MARGIN = 1e-3f;
constexpr float BOX_SLACK = 1e-3f;  // relative, plus BOX_SLACK_PX px, on each half-width
constexpr float BOX_SLACK_PX = 0.01f;

struct TileWalk {
  int size;                     // tile side, px
  int x0 = 0, y0 = 0;           // the tile's first pixel
  int columns = 0, rows = 0;    // its pixels inside the image
  int box[4] = {0, 0, -1, -1};  // local columns and rows (first, last) of the current Gaussian
  std::vector<int> consumed;    // per local pixel ly * size + lx
  std::vector<float> power;

  explicit TileWalk(int tile_size)
      : size(tile_size), consumed(tile_size * tile_size), power(tile_size * tile_size) {}

  void start(const Tiles& tiles, int64_t tile) {
    x0 = static_cast<int>(tile % tiles.tiles_x) * size;
    y0 = static_cast<int>(tile / tiles.tiles_x) * size;
    columns = std::min(size, tiles.width - x0);
    rows = std::min(size, tiles.height - y0);
  }

  int px(int local) const { return x0 + local % size; }
  int py(int local) const { return y0 + local / size; }

  // Visit every local pixel of the tile inside the image, row by row.
  template <typename Visit>
  void each_pixel(Visit visit) const {
    for (int ly = 0; ly < rows; ++ly)
      for (int lx = 0; lx < columns; ++lx) visit(ly * size + lx);
  }

  // Visit the local pixels of the current Gaussian's box, row by row.
  template <typename Visit>
  void each_in_box(Visit visit) const {
    for (int ly = box[1]; ly <= box[3]; ++ly)
      for (int lx = box[0]; lx <= box[2]; ++lx) visit(ly * size + lx);
  }

  // Sets the box of Gaussian g and fills power over it; returns its reach (pixels with power
  // below it get alpha < 1/255; NaN opacity gives NaN, which skips no pixel).
  float exponents(const Footprints& f, int64_t g) {
    const renderfm::Vec2 mean = f.mean(g);
    const renderfm::Conic conic = f.conic(g);
    const float reach = std::log(renderfm::MIN_ALPHA / f.opacities[g]) - REACH_MARGIN;
    set_box(mean, conic, reach);
    for (int ly = box[1]; ly <= box[3]; ++ly) {
      float* row = power.data() + ly * size;
      const int y = y0 + ly;
      for (int lx = box[0]; lx <= box[2]; ++lx)
        row[lx] = renderfm::footprint_power(renderfm::pixel_offset(mean, x0 + lx, y), conic);
    }
    return reach;
  }

  // power >= reach < 0 is the ellipse d^T C d <= -2 reach, C = [[a, b], [b, c]] positive
  // definite: |dx| <= sqrt(-2 reach c / det), |dy| <= sqrt(-2 reach a / det). Any other case
  // (reach NaN or >= 0, C not positive definite, an infinite extent or mean) takes the whole
  // tile.
  void set_box(renderfm::Vec2 mean, renderfm::Conic conic, float reach) {
    const float det = conic.a * conic.c - conic.b * conic.b;
    const float half_x = std::sqrt(-2.0f * reach * conic.c / det);
    const float half_y = std::sqrt(-2.0f * reach * conic.a / det);
    const bool bounded = reach < 0.0f && det > 0.0f && conic.a > 0.0f && std::isfinite(half_x) &&
                         std::isfinite(half_y) && std::isfinite(mean.x) && std::isfinite(mean.y);
    if (!bounded) {
      box[0] = box[1] = 0, box[2] = columns - 1, box[3] = rows - 1;
      return;
    }
    // pixel centre u + 0.5 within mean +- half: u in [mean - 0.5 - half, mean - 0.5 + half]
    const float wide_x = half_x * (1.0f + BOX_SLACK) + BOX_SLACK_PX;
    const float wide_y = half_y * (1.0f + BOX_SLACK) + BOX_SLACK_PX;
    const float left = mean.x - 0.5f - static_cast<float>(x0);
    const float top = mean.y - 0.5f - static_cast<float>(y0);
    box[0] = first_local(left - wide_x, columns), box[2] = last_local(left + wide_x, columns);
    box[1] = first_local(top - wide_y, rows), box[3] = last_local(top + wide_y, rows);
  }

  // the first and last local pixel in [0, n) at or after / at or before v (float local
  // coordinate); first > last where none is
  static int first_local(float v, int n) {
    return static_cast<int>(std::min(std::max(std::ceil(v), 0.0f), static_cast<float>(n)));
  }
  static int last_local(float v, int n) {
    return static_cast<int>(std::min(std::max(std::floor(v), -1.0f), static_cast<float>(n - 1)));
  }
};

// reference/reach.py's bound on where a Gaussian can draw, from its parameters alone: false only
// where slice_project culls it. Same formulas, float32; its SLACK covers the rounding.
constexpr float REACH_SLACK = 1.01f;
constexpr float REACH_LOG_SLACK = 1e-5f;
const float REACH_BLUR_PX2 = 2.0f * renderfm::COVARIANCE_BLUR_PX2 + std::sqrt(0.1f);
const float REACH_MIN_COVERAGE = std::sqrt(renderfm::MIN_COVERAGE_RATIO);

struct ReachCamera {
  float rotation[9], translation[3], fx, fy, cx, cy;
  float jacobian_bound;  // z^2 lambda_max(J J^T), px^2
  int width, height;
};

// (lowest, highest) of focal x' / z' + principal over the box x' in [x - shift, x + shift],
// z' in [z_lo, z_hi]
void projected_span(float x, float shift, float z_lo, float z_hi, float focal, float principal,
                    float* low, float* high) {
  const float corners[4] = {(x - shift) / z_lo, (x - shift) / z_hi, (x + shift) / z_lo,
                            (x + shift) / z_hi};
  *low = *std::min_element(corners, corners + 4) * focal + principal;
  *high = *std::max_element(corners, corners + 4) * focal + principal;
}

bool gaussian_may_reach(const ReachCamera& c, const float* mean, const float* log_scales,
                        const float* corr_logits, float opacity_logit) {
  const float log_sigmoid =
      std::min(opacity_logit, 0.0f) - std::log1p(std::exp(-std::fabs(opacity_logit)));
  const float log_alpha =
      std::max(log_sigmoid - std::log(renderfm::MIN_ALPHA) + REACH_LOG_SLACK, 0.0f);
  float unit[3];
  for (int k = 0; k < 3; ++k) {
    const float u = 2.0f * renderfm::sigmoid(corr_logits[k]) - 1.0f;
    unit[k] = u * u;
  }
  const float s0 = std::exp(2.0f * log_scales[0]), s1 = std::exp(2.0f * log_scales[1]),
              s2 = std::exp(2.0f * log_scales[2]);
  const float spread = (s0 + s1 * (1.0f + unit[0]) + s2 * (1.0f + unit[1] + unit[2])) * REACH_SLACK;
  const float shift = std::sqrt(spread * log_alpha / renderfm::OPACITY_LAMBDA) * REACH_SLACK;
  float cam[3];
  for (int i = 0; i < 3; ++i)
    cam[i] = c.rotation[3 * i] * mean[0] + c.rotation[3 * i + 1] * mean[1] +
             c.rotation[3 * i + 2] * mean[2] + c.translation[i];
  const float z_min = cam[2] - shift, z_hi = cam[2] + shift;
  const bool near = z_min <= renderfm::NEAR_PLANE_MM;
  const float z_lo = near ? 1.0f : z_min;
  const float sharp_trace = c.jacobian_bound / (z_lo * z_lo) * spread;
  const float coverage = std::max(
      sharp_trace / (sharp_trace + 2.0f * renderfm::COVARIANCE_BLUR_PX2), REACH_MIN_COVERAGE);
  const float log_drawn = std::max(log_alpha + std::log(coverage), 0.0f);
  const float radius =
      std::sqrt(2.0f * log_drawn) * std::sqrt(sharp_trace + REACH_BLUR_PX2) * REACH_SLACK + 1.0f;
  float u_lo, u_hi, v_lo, v_hi;
  projected_span(cam[0], shift, z_lo, z_hi, c.fx, c.cx, &u_lo, &u_hi);
  projected_span(cam[1], shift, z_lo, z_hi, c.fy, c.cy, &v_lo, &v_hi);
  const bool meets = u_hi + radius > 0.0f && u_lo - radius < c.width && v_hi + radius > 0.0f &&
                     v_lo - radius < c.height;
  return (meets || near) && z_hi > renderfm::NEAR_PLANE_MM && log_drawn > 0.0f;
}

// The tiles of Gaussian g's rectangle (tile_rect, the reference's tile_rects), row by row.
template <typename Visit>
void for_each_tile(const float* means2d, const int32_t* radii, int64_t g, int tile_size, int width,
                   int height, Visit visit) {
  int rect[4];
  renderfm::tile_rect({means2d[2 * g], means2d[2 * g + 1]}, radii[g], width, height, tile_size,
                      rect);
  const int tiles_x = (width + tile_size - 1) / tile_size;
  for (int ty = rect[1]; ty <= rect[3]; ++ty)
    for (int tx = rect[0]; tx <= rect[2]; ++tx) visit(static_cast<int64_t>(ty) * tiles_x + tx);
}

// tile_instances and tile_bin split the Gaussians into one contiguous chunk per thread.
int64_t chunk_grain(int64_t n, int threads) {
  const int64_t workers = std::max(threads, 1);
  return std::max<int64_t>((n + workers - 1) / workers, 1);
}

}  // namespace

extern "C" {

// *total = the number of (Gaussian, tile) instances: tile_bin's gaussian_ids length.
void tile_instances(int64_t n, const float* means2d, const int32_t* radii, int tile_size, int width,
                    int height, int64_t* total, int threads) {
  const int64_t grain = chunk_grain(n, threads);
  std::vector<int64_t> counts((n + grain - 1) / grain, 0);
  parallel_chunks(n, grain, threads, [&](int, int64_t begin, int64_t end) {
    int64_t count = 0;
    for (int64_t g = begin; g < end; ++g) {
      int rect[4];
      renderfm::tile_rect({means2d[2 * g], means2d[2 * g + 1]}, radii[g], width, height, tile_size,
                          rect);
      count += renderfm::tile_count(rect);
    }
    counts[begin / grain] = count;
  });
  *total = 0;
  for (const int64_t count : counts) *total += count;
}

// The reference's tile_keys without a global sort: each tile's instances are counted (per chunk
// of Gaussians), laid out by an exclusive scan over tiles, then chunks (tile_ranges
// [num_tiles, 2]), filled as (depth bits << 32) | Gaussian, sorted within each tile and cut back
// to the Gaussian. That is the order of the reference's stable sort of (tile << 32) | depth bits:
// by depth (positive floats' bits sort like the floats), ties in Gaussian order; the sort leaves
// nothing to the order of the fill. Needs n < 2^32.
void tile_bin(int64_t n, const float* means2d, const int32_t* radii, const float* depths,
              int tile_size, int width, int height, int64_t num_tiles, int64_t* gaussian_ids,
              int64_t* tile_ranges, int threads) {
  const int64_t grain = chunk_grain(n, threads), chunks = (n + grain - 1) / grain;
  // cursor[c * num_tiles + t]: chunk c's count in tile t, then where its next instance goes
  std::vector<int64_t> cursor(chunks * num_tiles, 0);
  parallel_chunks(n, grain, threads, [&](int, int64_t begin, int64_t end) {
    int64_t* count = cursor.data() + begin / grain * num_tiles;
    for (int64_t g = begin; g < end; ++g)
      for_each_tile(means2d, radii, g, tile_size, width, height,
                    [&](int64_t tile) { ++count[tile]; });
  });
  int64_t offset = 0;
  for (int64_t t = 0; t < num_tiles; ++t) {
    tile_ranges[2 * t] = offset;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t count = cursor[c * num_tiles + t];
      cursor[c * num_tiles + t] = offset;
      offset += count;
    }
    tile_ranges[2 * t + 1] = offset;
  }
  auto* keys = reinterpret_cast<uint64_t*>(gaussian_ids);
  parallel_chunks(n, grain, threads, [&](int, int64_t begin, int64_t end) {
    int64_t* next = cursor.data() + begin / grain * num_tiles;
    for (int64_t g = begin; g < end; ++g) {
      const uint64_t key =
          static_cast<uint64_t>(renderfm::float_bits(depths[g])) << 32 | static_cast<uint64_t>(g);
      for_each_tile(means2d, radii, g, tile_size, width, height,
                    [&](int64_t tile) { keys[next[tile]++] = key; });
    }
  });
  parallel_chunks(num_tiles, TILE_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      uint64_t *first = keys + tile_ranges[2 * t], *last = keys + tile_ranges[2 * t + 1];
      std::sort(first, last);
      for (uint64_t* key = first; key < last; ++key) *key &= 0xffffffffu;
    }
  });
}

// out[g] = 1 where Gaussian g may reach a pixel of the width x height image, else 0.
void may_reach(int64_t n, const float* means, const float* log_scales, const float* corr_logits,
               const float* opacity_logits, const float* world_to_camera, const float* intrinsics,
               int width, int height, bool* out, int threads) {
  ReachCamera c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.rotation[3 * i + j] = world_to_camera[4 * i + j];
    c.translation[i] = world_to_camera[4 * i + 3];
  }
  c.fx = intrinsics[0], c.fy = intrinsics[4], c.cx = intrinsics[2], c.cy = intrinsics[5];
  const float slack = static_cast<float>(renderfm::FRUSTUM_SLACK);
  const float lim_x = slack * 0.5f * width / c.fx, lim_y = slack * 0.5f * height / c.fy;
  const float p = c.fx * c.fx * (1.0f + lim_x * lim_x), q = c.fy * c.fy * (1.0f + lim_y * lim_y);
  const float r = c.fx * c.fy * lim_x * lim_y, half = 0.5f * (p - q);
  c.jacobian_bound = 0.5f * (p + q) + std::sqrt(half * half + r * r);
  c.width = width, c.height = height;
  parallel_chunks(n, GAUSSIAN_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g)
      out[g] = gaussian_may_reach(c, means + 3 * g, log_scales + 6 * g, corr_logits + 15 * g,
                                  opacity_logits[g]);
  });
}

void precompute(int64_t n, const float* log_scales, const float* corr_logits, float* s_c,
                float* gains, float* s_dd_inv, int threads) {
  parallel_chunks(n, GAUSSIAN_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      Mat3 cov, gain, dd_inv;
      renderfm::precompute_gaussian(log_scales + 6 * g, corr_logits + 15 * g, &cov, &gain, &dd_inv);
      store_mat3(s_c, g, cov);
      store_mat3(gains, g, gain);
      store_mat3(s_dd_inv, g, dd_inv);
    }
  });
}

void precompute_bwd(int64_t n, const float* log_scales, const float* corr_logits,
                    const float* grad_s_c, const float* grad_gains, const float* grad_s_dd_inv,
                    float* grad_log_scales, float* grad_corr_logits, int threads) {
  parallel_chunks(n, GAUSSIAN_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g)
      renderfm::precompute_gaussian_bwd(log_scales + 6 * g, corr_logits + 15 * g,
                                        load_mat3(grad_s_c, g), load_mat3(grad_gains, g),
                                        load_mat3(grad_s_dd_inv, g), grad_log_scales + 6 * g,
                                        grad_corr_logits + 15 * g);
  });
}

void slice_project_fwd(int64_t n, const float* means, const float* dir_means, const float* s_c,
                       const float* gains, const float* s_dd_inv, const float* opacity_logits,
                       const float* rgb, const float* sh, const float* specular_sh,
                       const float* world_to_camera, const float* intrinsics,
                       const float* camera_centre, int width, int height, float* means2d,
                       float* conics, float* depths, int32_t* radii, float* opacities,
                       float* colors, int threads) {
  const renderfm::Camera cam = renderfm::make_camera(world_to_camera, intrinsics, width, height);
  const Vec3 centre = load_vec3(camera_centre, 0);
  const Vec3 axis = renderfm::view_axis(cam);
  parallel_chunks(n, GAUSSIAN_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      Vec3 mu_c;
      float alpha;
      renderfm::slice_gaussian(load_vec3(means, g), load_vec3(dir_means, g), load_mat3(gains, g),
                               load_mat3(s_dd_inv, g), opacity_logits[g], centre, &mu_c, &alpha);
      const Vec3 color =
          renderfm::shade_gaussian(axis, load_vec3(rgb, g), sh + 9 * g, specular_sh + 9 * g);
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
      store_vec3(colors, g, color);
    }
  });
}

void slice_project_bwd(int64_t n, const float* means, const float* dir_means, const float* s_c,
                       const float* gains, const float* s_dd_inv, const float* opacity_logits,
                       const float* rgb, const float* sh, const float* specular_sh,
                       const float* world_to_camera, const float* intrinsics,
                       const float* camera_centre, int width, int height, const float* grad_means2d,
                       const float* grad_conics, const float* grad_depths,
                       const float* grad_opacities, const float* grad_colors, float* grad_means,
                       float* grad_dir_means, float* grad_s_c, float* grad_gains,
                       float* grad_s_dd_inv, float* grad_opacity_logits, float* grad_rgb,
                       float* grad_sh, float* grad_specular_sh, int threads) {
  const renderfm::Camera cam = renderfm::make_camera(world_to_camera, intrinsics, width, height);
  const Vec3 centre = load_vec3(camera_centre, 0);
  parallel_chunks(n, GAUSSIAN_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const renderfm::ProjectionGrad grad = {
          {grad_means2d[2 * g], grad_means2d[2 * g + 1]},
          {grad_conics[3 * g], grad_conics[3 * g + 1], grad_conics[3 * g + 2]},
          grad_depths[g],
          grad_opacities[g],
          load_vec3(grad_colors, g)};
      const renderfm::GaussianGrad d = renderfm::slice_project_bwd(
          load_vec3(means, g), load_vec3(dir_means, g), load_mat3(s_c, g), load_mat3(gains, g),
          load_mat3(s_dd_inv, g), opacity_logits[g], load_vec3(rgb, g), sh + 9 * g,
          specular_sh + 9 * g, centre, cam, grad);
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
  });
}

void blend_fwd(const float* means2d, const float* conics, const float* colors,
               const float* opacities, const float* depths, const int64_t* gaussian_ids,
               const int64_t* tile_ranges, int64_t num_tiles, int tile_size, int width, int height,
               const float* background, float* out_rgb, float* out_alpha, float* out_depth,
               float* final_t, int32_t* n_consumed, int threads) {
  const Tiles tiles = {tile_size, (width + tile_size - 1) / tile_size, width, height};
  const Footprints f = {means2d, conics, colors, opacities, depths};
  const Vec3 back = {background[0], background[1], background[2]};
  parallel_chunks(num_tiles, TILE_GRAIN, threads, [&](int, int64_t begin, int64_t end) {
    TileWalk walk(tile_size);
    std::vector<renderfm::PixelState> states(tile_size * tile_size);
    for (int64_t tile = begin; tile < end; ++tile) {
      walk.start(tiles, tile);
      std::fill(states.begin(), states.end(), renderfm::empty_pixel());
      std::fill(walk.consumed.begin(), walk.consumed.end(), 0);
      int alive = walk.rows * walk.columns;
      const int64_t start = tile_ranges[2 * tile], stop = tile_ranges[2 * tile + 1];
      for (int64_t k = start; k < stop && alive > 0; ++k) {
        const int64_t g = gaussian_ids[k];
        const float reach = walk.exponents(f, g);
        walk.each_in_box([&](int i) {
          renderfm::PixelState& state = states[i];
          if (walk.power[i] < reach || state.done) return;
          if (renderfm::blend_step(state, f.mean(g), f.conic(g), opacities[g], f.color(g),
                                   depths[g], walk.px(i), walk.py(i)))
            walk.consumed[i] = static_cast<int>(k - start) + 1;
          else if (state.done)
            --alive;
        });
      }
      walk.each_pixel([&](int i) {
        const int64_t pixel = static_cast<int64_t>(walk.py(i)) * width + walk.px(i);
        float rgb[3];
        renderfm::finish_pixel(states[i], back, rgb, &out_alpha[pixel], &out_depth[pixel]);
        store_vec3(out_rgb, pixel, {rgb[0], rgb[1], rgb[2]});
        final_t[pixel] = states[i].t;
        n_consumed[pixel] = walk.consumed[i];
      });
    }
  });
}

// grads: [N, 10] zeroed, per Gaussian dL/d (mean2d x, y, conic a, b, c, colour r, g, b, opacity,
// depth); the caller splits it.
void blend_bwd(const float* means2d, const float* conics, const float* colors,
               const float* opacities, const float* depths, const int64_t* gaussian_ids,
               const int64_t* tile_ranges, int64_t num_tiles, int tile_size, int width, int height,
               int64_t n, const float* background, const float* out_alpha, const float* out_depth,
               const float* final_t, const int32_t* n_consumed, const float* grad_rgb,
               const float* grad_alpha, const float* grad_depth, float* grads, int threads) {
  const Tiles tiles = {tile_size, (width + tile_size - 1) / tile_size, width, height};
  const Footprints f = {means2d, conics, colors, opacities, depths};
  const Vec3 back = {background[0], background[1], background[2]};
  std::vector<std::vector<float>> spare(std::max(threads, 1) - 1);
  for (auto& buffer : spare) buffer.assign(10 * n, 0.0f);
  parallel_chunks(num_tiles, TILE_GRAIN, threads, [&](int worker, int64_t begin, int64_t end) {
    float* sums = worker == 0 ? grads : spare[worker - 1].data();
    TileWalk walk(tile_size);
    std::vector<renderfm::PixelGradState> states(tile_size * tile_size);
    for (int64_t tile = begin; tile < end; ++tile) {
      walk.start(tiles, tile);
      int walked = 0;  // the most instances any pixel of the tile consumed
      walk.each_pixel([&](int i) {
        const int64_t pixel = static_cast<int64_t>(walk.py(i)) * width + walk.px(i);
        states[i] = renderfm::start_pixel_bwd(final_t[pixel], out_alpha[pixel], out_depth[pixel],
                                              back, load_vec3(grad_rgb, pixel), grad_alpha[pixel],
                                              grad_depth[pixel]);
        walk.consumed[i] = n_consumed[pixel];
        walked = std::max(walked, walk.consumed[i]);
      });
      const int64_t start = tile_ranges[2 * tile];
      for (int64_t k = start + walked - 1; k >= start; --k) {
        const int64_t g = gaussian_ids[k];
        const float reach = walk.exponents(f, g);
        walk.each_in_box([&](int i) {
          if (walk.power[i] < reach || k - start >= walk.consumed[i]) return;
          renderfm::FootprintGrad d = {};
          if (!renderfm::blend_step_bwd(states[i], f.mean(g), f.conic(g), opacities[g], f.color(g),
                                        depths[g], walk.px(i), walk.py(i), &d))
            return;
          const float terms[10] = {d.mean2d.x, d.mean2d.y, d.conic.a, d.conic.b, d.conic.c,
                                   d.color.x,  d.color.y,  d.color.z, d.opacity, d.depth};
          for (int j = 0; j < 10; ++j) sums[10 * g + j] += terms[j];
        });
      }
    }
  });
  for (const auto& buffer : spare)
    for (int64_t k = 0; k < 10 * n; ++k) grads[k] += buffer[k];
}

}  // extern "C"
