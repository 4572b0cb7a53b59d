// Per-Gaussian math of the 6D Gaussian renderer, shared by the CUDA kernels (NVRTC, nvcc) and the
// host C++ test harness (g++). Every function is the float32 twin of a PyTorch reference function,
// with the same constants and, where it matters for rounding, the same order of operations:
//
//   precompute_gaussian  render/reference/precompute.py    precompute (block form)
//   slice_gaussian       render/reference/slice_project.py  slice_gaussians
//   view_axis            render/reference/slice_project.py  the shading direction (axis)
//   shade_gaussian       render/reference/slice_project.py  colours (sh.py's basis)
//   project_gaussian     render/reference/slice_project.py  slice_project's projection and culling
//   tile_rect            render/reference/tile_keys.py      tile_rects
//   pixel_alpha          render/reference/blend.py          _alpha
//   blend_step           render/reference/blend.py          blend (one pixel, one Gaussian)
//   finish_pixel         render/reference/blend.py          blend's outputs
//
// Their backward twins are in gaussian_math_bwd.cuh.
//
// Frames and units: world = patient RAS mm; camera = OpenCV (x right, y down, z forward) mm;
// image = px, pixel (u, v) has its centre at (u + 0.5, v + 0.5). Matrices are row-major.
// NaN semantics follow torch: clamps keep NaN (fminf/fmaxf would drop it), so a NaN reaches the
// finiteness test and culls the Gaussian; like the reference, an Inf input whose outputs stay
// finite (opacity logit +Inf gives alpha 1) is kept. Fast math would break the NaN tests.
#ifndef RENDERFM_GAUSSIAN_MATH_CUH
#define RENDERFM_GAUSSIAN_MATH_CUH

#ifdef __CUDACC__
#define RFM_HD __host__ __device__ __forceinline__
#else
#include <cmath>  // host build only; NVRTC has the math functions built in
#define RFM_HD inline
#endif

namespace renderfm {

// The reference's constants (slice_project.py, blend.py); float32 values identical to torch's.
constexpr float OPACITY_LAMBDA = 0.35f;       // opacity falloff with the direction offset
constexpr float NEAR_PLANE_MM = 1.0f;         // culled at depth <= this (camera z, mm)
constexpr float COVARIANCE_BLUR_PX2 = 0.1f;   // added to the 2D covariance's diagonal, px^2
constexpr float MIN_COVERAGE_RATIO = 1e-6f;   // floor of det S / det(S + 0.1 I)
constexpr float MIN_ALPHA = 1.0f / 255.0f;    // alpha below this is invisible
constexpr double FRUSTUM_SLACK = 1.3;         // Jacobian clamp in half fields of view (double)
constexpr float MAX_ALPHA = 0.99f;            // per-pixel alpha cap in the blend
constexpr float MIN_TRANSMITTANCE = 1e-4f;    // a pixel stops before T would fall below this
constexpr float MAX_RADIUS_PX = 1048576.0f;   // 1 << 20, the reference's radius clamp
constexpr float MIN_NORM = 1e-12f;            // torch.nn.functional.normalize's eps
constexpr float FLOAT_MAX = 3.40282347e38f;

// The 3DGS real SH constants of degree 2 (sh.py).
constexpr float SH_C0 = 0.28209479177387814f;
constexpr float SH_C1 = 0.4886025119029199f;
constexpr float SH_C2_XY = 1.0925484305920792f;  // also -(yz) and -(xz) terms
constexpr float SH_C2_ZZ = 0.31539156525252005f;
constexpr float SH_C2_XX_YY = 0.5462742152960396f;

struct Vec2 { float x, y; };
struct Vec3 { float x, y, z; };
struct Mat3 { float m[9]; };        // row-major: m[3 * row + col]
struct Conic { float a, b, c; };    // inverse 2D covariance [[a, b], [b, c]], 1/px^2

// A pinhole camera: world_to_camera = [rotation | translation] (RAS mm -> camera mm).
struct Camera {
  Mat3 rotation;
  Vec3 translation;  // mm
  float fx, fy, cx, cy;  // px
  int width, height;     // px
  float lim_x, lim_y;    // EWA clamp of x/z and y/z: 1.3 x tan(half field of view)
};

// What the projection hands to tile binning and blending.
struct Projection {
  Vec2 mean2d;    // px
  Conic conic;    // 1/px^2
  float depth;    // camera z, mm
  float opacity;  // alpha_c times the coverage factor sqrt(det S / det(S + 0.1 I))
  int radius;     // px, 0 = culled
};

// ---------------------------------------------------------------- scalar helpers --------------

RFM_HD bool is_finite(float x) { return x == x && fabsf(x) <= FLOAT_MAX; }

// torch.clamp_min / clamp_max: a NaN stays NaN.
RFM_HD float clamp_min(float x, float low) { return x < low ? low : x; }
RFM_HD float clamp_max(float x, float high) { return x > high ? high : x; }

RFM_HD float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---------------------------------------------------------------- vectors and 3x3 matrices -----

RFM_HD Vec3 sub(Vec3 a, Vec3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
RFM_HD Vec3 add(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
RFM_HD bool is_finite(Vec3 v) { return is_finite(v.x) && is_finite(v.y) && is_finite(v.z); }

// F.normalize: v / max(|v|, 1e-12).
RFM_HD Vec3 normalized(Vec3 v) {
  const float norm = clamp_min(sqrtf(v.x * v.x + v.y * v.y + v.z * v.z), MIN_NORM);
  return {v.x / norm, v.y / norm, v.z / norm};
}

RFM_HD Vec3 mat_vec(const Mat3& a, Vec3 v) {
  const float* m = a.m;
  return {m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
          m[6] * v.x + m[7] * v.y + m[8] * v.z};
}

// v^T A v, evaluated as (v^T A) v like the reference.
RFM_HD float quadratic_form(const Mat3& a, Vec3 v) {
  const float* m = a.m;
  const float r0 = v.x * m[0] + v.y * m[3] + v.z * m[6];
  const float r1 = v.x * m[1] + v.y * m[4] + v.z * m[7];
  const float r2 = v.x * m[2] + v.y * m[5] + v.z * m[8];
  return r0 * v.x + r1 * v.y + r2 * v.z;
}

RFM_HD Mat3 identity() { return {{1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f}}; }

RFM_HD Mat3 transpose(const Mat3& a) {
  const float* m = a.m;
  return {{m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]}};
}

RFM_HD Mat3 mul(const Mat3& a, const Mat3& b) {
  Mat3 r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      r.m[3 * i + j] =
          a.m[3 * i] * b.m[j] + a.m[3 * i + 1] * b.m[3 + j] + a.m[3 * i + 2] * b.m[6 + j];
  return r;
}

RFM_HD Mat3 plus_identity(Mat3 a) {
  a.m[0] += 1.f;
  a.m[4] += 1.f;
  a.m[8] += 1.f;
  return a;
}

// A^-1 by the adjugate. Used on I + M M^T and I + M^T M, symmetric with eigenvalues >= 1, so
// det >= 1; float32 error grows with the condition number, as it does for torch's LU.
RFM_HD Mat3 inverse(const Mat3& a) {
  const float* m = a.m;
  // The transposed cofactors.
  const Mat3 adjugate = {
      {m[4] * m[8] - m[5] * m[7], m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
       m[5] * m[6] - m[3] * m[8], m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
       m[3] * m[7] - m[4] * m[6], m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3]}};
  const float inv_det = 1.0f / (m[0] * adjugate.m[0] + m[1] * adjugate.m[3] + m[2] * adjugate.m[6]);
  Mat3 r;
  for (int k = 0; k < 9; ++k) r.m[k] = adjugate.m[k] * inv_det;
  return r;
}

// B^-1 X for lower-triangular B, by forward substitution per column (LAPACK trsm's order).
RFM_HD Mat3 lower_solve(const Mat3& b, const Mat3& x) {
  const float* l = b.m;
  Mat3 r;
  for (int j = 0; j < 3; ++j) {
    const float r0 = x.m[j] / l[0];
    const float r1 = (x.m[3 + j] - l[3] * r0) / l[4];
    const float r2 = (x.m[6 + j] - l[6] * r0 - l[7] * r1) / l[8];
    r.m[j] = r0;
    r.m[3 + j] = r1;
    r.m[6 + j] = r2;
  }
  return r;
}

// ---------------------------------------------------------------- stage 1: precompute ----------

// The values the 6x6 factor L = diag(s) U is built from: s = exp(log_scales) and, for U's
// strictly-lower entries U_ij = 2 sigmoid(c) - 1, sigmoid(c) of corr_logits in row-major order
// (1,0), (2,0), (2,1), (3,0), ... (5,4). Computed once per Gaussian: the backward reuses them.
struct FactorValues { float scale[6], sig[15]; };

RFM_HD FactorValues factor_values(const float log_scales[6], const float corr_logits[15]) {
  FactorValues f;
  for (int k = 0; k < 6; ++k) f.scale[k] = expf(log_scales[k]);
  for (int k = 0; k < 15; ++k) f.sig[k] = sigmoid(corr_logits[k]);
  return f;
}

// The 3x3 block of L at (row0, col0). Every entry is s_i * U_ij, zeros included, as in the
// reference (an infinite scale then yields NaN, and the Gaussian is culled).
RFM_HD Mat3 factor_block(const FactorValues& f, int row0, int col0) {
  Mat3 block;
  for (int i = 0; i < 3; ++i) {
    const int row = row0 + i;
    for (int j = 0; j < 3; ++j) {
      const int col = col0 + j;
      float unit = col == row ? 1.0f : 0.0f;
      if (col < row) unit = 2.0f * f.sig[row * (row - 1) / 2 + col] - 1.0f;
      block.m[3 * i + j] = f.scale[row] * unit;
    }
  }
  return block;
}

// The blocks of one Gaussian's factor and the terms of the block form built from them (DESIGN.md
// section 4): A_pp = L[0:3, 0:3], A_dp = L[3:6, 0:3], B = L[3:6, 3:6], M = B^-1 A_dp, B^-1,
// P^-1 = (I + M M^T)^-1 and Q^-1 = (I + M^T M)^-1. precompute_gaussian and its backward share them.
struct SlicingBlocks {
  FactorValues values;
  Mat3 a_pp, a_dp, b, m, b_inv, p_inv, q_inv;
};

RFM_HD SlicingBlocks slicing_blocks(const float log_scales[6], const float corr_logits[15]) {
  SlicingBlocks k;
  k.values = factor_values(log_scales, corr_logits);
  k.a_pp = factor_block(k.values, 0, 0);
  k.a_dp = factor_block(k.values, 3, 0);
  k.b = factor_block(k.values, 3, 3);
  k.m = lower_solve(k.b, k.a_dp);
  const Mat3 m_t = transpose(k.m);
  k.b_inv = lower_solve(k.b, identity());
  k.p_inv = inverse(plus_identity(mul(k.m, m_t)));
  k.q_inv = inverse(plus_identity(mul(m_t, k.m)));
  return k;
}

// View-independent slicing terms of one Gaussian (DESIGN.md section 4, block form):
//   s_c      = A_pp Q^-1 A_pp^T             mm^2, sliced 3D covariance (RAS)
//   gain     = A_pp M^T P^-1 B^-1           mm, K = S_pd S_dd^-1
//   s_dd_inv = B^-T P^-1 B^-1               S_dd^-1 (direction units)
RFM_HD void precompute_gaussian(const float log_scales[6], const float corr_logits[15], Mat3* s_c,
                                Mat3* gain, Mat3* s_dd_inv) {
  const SlicingBlocks k = slicing_blocks(log_scales, corr_logits);
  *s_c = mul(mul(k.a_pp, k.q_inv), transpose(k.a_pp));
  *gain = mul(mul(mul(k.a_pp, transpose(k.m)), k.p_inv), k.b_inv);
  *s_dd_inv = mul(mul(transpose(k.b_inv), k.p_inv), k.b_inv);
}

// ---------------------------------------------------------------- stage 2: slice, shade, project

// Condition one Gaussian on the view from camera_centre (RAS mm):
//   delta = normalize(mu_p - c) - normalize(mu_d); mu_c = mu_p + K delta (RAS mm);
//   alpha_c = sigmoid(o) exp(-0.35 delta^T S_dd^-1 delta).
RFM_HD void slice_gaussian(Vec3 mean, Vec3 dir_mean, const Mat3& gain, const Mat3& s_dd_inv,
                           float opacity_logit, Vec3 camera_centre, Vec3* mu_c, float* alpha_c) {
  const Vec3 delta = sub(normalized(sub(mean, camera_centre)), normalized(dir_mean));
  *mu_c = add(mean, mat_vec(gain, delta));
  *alpha_c = sigmoid(opacity_logit) * expf(-OPACITY_LAMBDA * quadratic_form(s_dd_inv, delta));
}

// The 3DGS degree-2 basis Y_k(v), k = 0..8, at the unit direction v (sh.py's sh_basis).
RFM_HD void sh_basis(Vec3 v, float basis[9]) {
  const float xx = v.x * v.x, yy = v.y * v.y, zz = v.z * v.z;
  basis[0] = SH_C0;
  basis[1] = -SH_C1 * v.y;
  basis[2] = SH_C1 * v.z;
  basis[3] = -SH_C1 * v.x;
  basis[4] = SH_C2_XY * v.x * v.y;
  basis[5] = -SH_C2_XY * v.y * v.z;
  basis[6] = SH_C2_ZZ * (2.0f * zz - xx - yy);
  basis[7] = -SH_C2_XY * v.x * v.z;
  basis[8] = SH_C2_XX_YY * (xx - yy);
}

// S(v) = sum_k sh[k] Y_k(v).
RFM_HD float sh_shading(Vec3 v, const float sh[9]) {
  float basis[9];
  sh_basis(v, basis);
  float sum = 0.0f;
  for (int k = 0; k < 9; ++k) sum += sh[k] * basis[k];
  return sum;
}

// The camera's viewing axis in RAS (unit: row 2 of world_to_camera's rotation), the direction
// every Gaussian of a frame is shaded along: Slicer's headlight is one directional light along
// the axis (render/reference/slice_project.py says why not the view of each Gaussian).
RFM_HD Vec3 view_axis(const Camera& cam) {
  const float* r = cam.rotation.m;
  return normalized({r[6], r[7], r[8]});
}

// colour = rgb * max(0, S(a)) + max(0, W(a)), a = view_axis(cam), RAS; W (specular_sh) is the
// white specular light (channels.py).
RFM_HD Vec3 shade_gaussian(Vec3 axis, Vec3 rgb, const float sh[9], const float specular_sh[9]) {
  const float shading = clamp_min(sh_shading(axis, sh), 0.0f);
  const float white = clamp_min(sh_shading(axis, specular_sh), 0.0f);
  return {rgb.x * shading + white, rgb.y * shading + white, rgb.z * shading + white};
}

// Camera from the reference's tensors: world_to_camera [4, 4] and intrinsics [3, 3], row-major.
RFM_HD Camera make_camera(const float* world_to_camera, const float* intrinsics, int width,
                          int height) {
  Camera cam;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) cam.rotation.m[3 * i + j] = world_to_camera[4 * i + j];
  cam.translation = {world_to_camera[3], world_to_camera[7], world_to_camera[11]};
  cam.fx = intrinsics[0];
  cam.fy = intrinsics[4];
  cam.cx = intrinsics[2];
  cam.cy = intrinsics[5];
  cam.width = width;
  cam.height = height;
  // As the reference rounds it: the numerator in double, then a float32 division.
  cam.lim_x = static_cast<float>(FRUSTUM_SLACK * 0.5 * width) / cam.fx;
  cam.lim_y = static_cast<float>(FRUSTUM_SLACK * 0.5 * height) / cam.fy;
  return cam;
}

// EWA: the 2D covariance S = [[a, b], [b, c]] px^2 of S_c (mm^2, RAS) seen at camera point p (mm,
// depth already made safe), J R S_c R^T J^T, before the blur. J is the pinhole's Jacobian at p with
// x/z, y/z clamped to 1.3 half fields of view (far off-screen points do not blow up).
RFM_HD void ewa_covariance(Vec3 p, const Mat3& s_c, const Camera& cam, float* a, float* b,
                           float* c) {
  const float tx = clamp_max(clamp_min(p.x / p.z, -cam.lim_x), cam.lim_x) * p.z;
  const float ty = clamp_max(clamp_min(p.y / p.z, -cam.lim_y), cam.lim_y) * p.z;
  const float z2 = p.z * p.z;
  const float j00 = cam.fx / p.z, j02 = -cam.fx * tx / z2;  // J = [[j00, 0, j02], [0, j11, j12]]
  const float j11 = cam.fy / p.z, j12 = -cam.fy * ty / z2;
  const float* r = cam.rotation.m;
  const float t0[3] = {j00 * r[0] + j02 * r[6], j00 * r[1] + j02 * r[7], j00 * r[2] + j02 * r[8]};
  const float t1[3] = {j11 * r[3] + j12 * r[6], j11 * r[4] + j12 * r[7], j11 * r[5] + j12 * r[8]};
  float ts0[3], ts1[3];  // rows of (J R) S_c
  for (int k = 0; k < 3; ++k) {
    ts0[k] = t0[0] * s_c.m[k] + t0[1] * s_c.m[3 + k] + t0[2] * s_c.m[6 + k];
    ts1[k] = t1[0] * s_c.m[k] + t1[1] * s_c.m[3 + k] + t1[2] * s_c.m[6 + k];
  }
  *a = ts0[0] * t0[0] + ts0[1] * t0[1] + ts0[2] * t0[2];
  *b = ts0[0] * t1[0] + ts0[1] * t1[1] + ts0[2] * t1[2];
  *c = ts1[0] * t1[0] + ts1[1] * t1[1] + ts1[2] * t1[2];
}

// Opacity-aware radius (px): beyond it alpha_c exp(-r^2 / 2 lambda_max) < 1/255. Non-finite
// -> 0, clamped to 2^20 (the reference's _radii).
RFM_HD int footprint_radius(float a, float c, float det, float alpha) {
  const float mid = 0.5f * (a + c);
  const float lambda_max = mid + sqrtf(clamp_min(mid * mid - det, 0.1f));
  const float extent = sqrtf(2.0f * logf(clamp_min(alpha / MIN_ALPHA, 1.0f)));
  float radius = ceilf(extent * sqrtf(clamp_min(lambda_max, 0.0f)));
  if (!is_finite(radius)) radius = 0.0f;
  return static_cast<int>(clamp_max(clamp_min(radius, 0.0f), MAX_RADIUS_PX));
}

// det S / det(S + 0.1 I) of the sharp footprint (sharp_a, b, sharp_c) over the blurred one's safe
// det, floored at MIN_COVERAGE_RATIO (NaN stays NaN): the opacity's coverage factor is its sqrt.
RFM_HD float coverage_ratio(float sharp_a, float b, float sharp_c, float safe_det) {
  return clamp_min((sharp_a * sharp_c - b * b) / safe_det, MIN_COVERAGE_RATIO);
}

// Project the sliced Gaussian (mu_c RAS mm, s_c mm^2, alpha_c) into the image. Outputs equal the
// reference's for every Gaussian (a depth <= 1 mm is replaced by 1 and a det <= 0 by 1 where
// they divide); the footprint is blurred by 0.1 px^2 and the opacity scaled to keep its coverage;
// radius is 0 unless the Gaussian is finite (colour included), in front of the near plane, has a
// positive-definite footprint, a drawn opacity >= 1/255 and overlaps the image.
RFM_HD Projection project_gaussian(Vec3 mu_c, const Mat3& s_c, float alpha_c, Vec3 color,
                                   const Camera& cam) {
  Projection out;
  Vec3 p = add(mat_vec(cam.rotation, mu_c), cam.translation);  // camera mm
  out.depth = p.z;
  p.z = p.z > NEAR_PLANE_MM ? p.z : 1.0f;
  out.mean2d = {cam.fx * p.x / p.z + cam.cx, cam.fy * p.y / p.z + cam.cy};
  float sharp_a, b, sharp_c;
  ewa_covariance(p, s_c, cam, &sharp_a, &b, &sharp_c);
  const float a = sharp_a + COVARIANCE_BLUR_PX2, c = sharp_c + COVARIANCE_BLUR_PX2;
  const float det = a * c - b * b;
  const float safe_det = det > 0.0f ? det : 1.0f;
  out.conic = {c / safe_det, -b / safe_det, a / safe_det};
  const float alpha = alpha_c * sqrtf(coverage_ratio(sharp_a, b, sharp_c, safe_det));
  out.opacity = alpha;

  const int radius = footprint_radius(a, c, det, alpha);
  const float r = static_cast<float>(radius);
  const bool finite = is_finite(out.mean2d.x) && is_finite(out.mean2d.y) &&
                      is_finite(out.conic.a) && is_finite(out.conic.b) && is_finite(out.conic.c) &&
                      is_finite(color) && is_finite(alpha) && is_finite(out.depth);
  const bool visible = finite && out.depth > NEAR_PLANE_MM && det > 0.0f && alpha >= MIN_ALPHA &&
                       out.mean2d.x + r > 0.0f && out.mean2d.y + r > 0.0f &&
                       out.mean2d.x - r < static_cast<float>(cam.width) &&
                       out.mean2d.y - r < static_cast<float>(cam.height);
  out.radius = visible ? radius : 0;
  return out;
}

// ---------------------------------------------------------------- stage 3: tiles ---------------

constexpr int TILE_SIZE = 16;  // px per tile side: one 16x16 thread block in the blend kernels

// Inclusive tile rectangle {x0, y0, x1, y1} of the square of half-size radius px around mean2d,
// clamped to the tile grid; x1 < x0 (empty) where radius is 0. A NaN mean gives tile 0 (the
// reference's float -> int cast is undefined there; its radius is 0 anyway).
RFM_HD void tile_rect(Vec2 mean2d, int radius, int width, int height, int tile_size, int rect[4]) {
  const float tiles[2] = {static_cast<float>((width + tile_size - 1) / tile_size - 1),
                          static_cast<float>((height + tile_size - 1) / tile_size - 1)};
  const float centre[2] = {mean2d.x, mean2d.y};
  const float r = static_cast<float>(radius), size = static_cast<float>(tile_size);
  for (int k = 0; k < 2; ++k) {
    const float low = floorf((centre[k] - r) / size);
    const float high = floorf((centre[k] + r) / size);
    // Clamp in float (NaN -> 0) before the cast, which overflows otherwise.
    rect[k] = static_cast<int>(fminf(low > 0.0f ? low : 0.0f, tiles[k]));
    rect[k + 2] =
        radius > 0 ? static_cast<int>(fminf(high > 0.0f ? high : 0.0f, tiles[k])) : rect[k] - 1;
  }
}

// ---------------------------------------------------------------- stage 4: blend ---------------

// d = mean2d - the centre of pixel (px, py), px.
RFM_HD Vec2 pixel_offset(Vec2 mean2d, int px, int py) {
  return {mean2d.x - (static_cast<float>(px) + 0.5f), mean2d.y - (static_cast<float>(py) + 0.5f)};
}

// The exponent -(a dx^2 + c dy^2) / 2 - b dx dy of a footprint at offset d (px).
RFM_HD float footprint_power(Vec2 d, Conic conic) {
  return -0.5f * (conic.a * d.x * d.x + conic.c * d.y * d.y) - conic.b * d.x * d.y;
}

// alpha of a Gaussian (mean2d px, conic, opacity alpha_c) at the centre of pixel (px, py):
// min(0.99, opacity exp(power)); 0 where power > 0 (a numerically non-positive-definite conic)
// or NaN.
RFM_HD float pixel_alpha(Vec2 mean2d, Conic conic, float opacity, int px, int py) {
  const float power = footprint_power(pixel_offset(mean2d, px, py), conic);
  const float alpha = clamp_max(opacity * expf(clamp_max(power, 0.0f)), MAX_ALPHA);
  return power <= 0.0f ? alpha : 0.0f;
}

// One pixel's front-to-back state: sums of the weights w = alpha T times colour, 1 and depth, and
// the transmittance T still left. done: a Gaussian would have taken T below 1e-4 (the pixel
// ignores it and every one behind it).
struct PixelState {
  float rgb[3];  // sum of w colour
  float weight;  // sum of w: the pixel's alpha, as blend.py reports it
  float depth;   // sum of w depth, mm
  float t;       // transmittance
  bool done;
};

RFM_HD PixelState empty_pixel() { return {{0.0f, 0.0f, 0.0f}, 0.0f, 0.0f, 1.0f, false}; }

// Carry pixel (px, py) through the next Gaussian of its depth-sorted list. Returns whether the
// Gaussian contributed. Skipped: alpha < 1/255 (NaN too: the reference keeps alpha >= 1/255);
// stops (done) before a Gaussian with T (1 - alpha) < 1e-4, as the reference's `alive`.
RFM_HD bool blend_step(PixelState& s, Vec2 mean2d, Conic conic, float opacity, Vec3 color,
                       float depth, int px, int py) {
  const float alpha = pixel_alpha(mean2d, conic, opacity, px, py);
  if (!(alpha >= MIN_ALPHA)) return false;
  const float next_t = s.t * (1.0f - alpha);
  if (next_t < MIN_TRANSMITTANCE) {
    s.done = true;
    return false;
  }
  const float w = alpha * s.t;
  s.rgb[0] += w * color.x;
  s.rgb[1] += w * color.y;
  s.rgb[2] += w * color.z;
  s.weight += w;
  s.depth += w * depth;
  s.t = next_t;
  return true;
}

// A pixel's outputs: rgb + T background, alpha = sum of w, depth = sum(w z) / alpha (0 where
// alpha is 0). alpha is the weight sum, as blend.py computes it, not 1 - T: the two agree up to
// float32 rounding (sum w = 1 - T exactly in real arithmetic), but 1 - T cancels for faint
// pixels (alpha ~ 1/255 keeps ~4 significant digits), which would cost the depth ratio
// ~1e-3 mm; the background still takes the carried T, which the backward pass needs.
RFM_HD void finish_pixel(const PixelState& s, Vec3 background, float rgb[3], float* alpha,
                         float* depth) {
  rgb[0] = s.rgb[0] + s.t * background.x;
  rgb[1] = s.rgb[1] + s.t * background.y;
  rgb[2] = s.rgb[2] + s.t * background.z;
  *alpha = s.weight;
  *depth = s.weight > 0.0f ? s.depth / s.weight : 0.0f;
}

}  // namespace renderfm

#endif  // RENDERFM_GAUSSIAN_MATH_CUH
