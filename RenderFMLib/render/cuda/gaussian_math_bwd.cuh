// Backward (vector-Jacobian) twins of gaussian_math.cuh's per-frame functions, shared by the CUDA
// backward kernels, the CPU kernels and the host test harness. Each gives what torch autograd
// gives through the PyTorch reference, including its conventions at the edges:
//
//   precompute_gaussian_bwd  render/reference/precompute.py    precompute (block form)
//   slice_project_bwd        render/reference/slice_project.py slice_project (slice, shade,
//                                                              project)
//   start_pixel_bwd,         render/reference/blend.py         blend (one pixel, walked back to
//   blend_step_bwd                                             front from the forward's final T)
//
// Edge conventions (torch's): clamp, clamp_min and clamp_max pass the gradient where the input
// lies within the bounds, bounds included; torch.where passes it to the branch taken, so the
// depth replaced by 1 at the near plane and the det replaced by 1 get none; normalize's norm
// clamped at 1e-12 passes none through the norm (a zero vector has gradient g / 1e-12).
// A Gaussian whose cotangents are all zero (culled: in no tile) gets exactly zero gradients,
// which is autograd's answer wherever its Jacobian is finite, and keeps NaN out of culled
// non-finite Gaussians.
#ifndef RENDERFM_GAUSSIAN_MATH_BWD_CUH
#define RENDERFM_GAUSSIAN_MATH_BWD_CUH

#include "gaussian_math.cuh"

namespace renderfm {

// ---------------------------------------------------------------- helpers ---------------------

RFM_HD float dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
RFM_HD Vec3 scaled(Vec3 v, float s) { return {v.x * s, v.y * s, v.z * s}; }

RFM_HD Vec3 mat_t_vec(const Mat3& a, Vec3 v) { return mat_vec(transpose(a), v); }

// (A + A^T) v: the gradient of v^T A v with respect to v.
RFM_HD Vec3 symmetric_vec(const Mat3& a, Vec3 v) { return add(mat_vec(a, v), mat_t_vec(a, v)); }

// s u v^T.
RFM_HD Mat3 outer(Vec3 u, Vec3 v, float s) {
  const float ul[3] = {u.x * s, u.y * s, u.z * s}, vl[3] = {v.x, v.y, v.z};
  Mat3 r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r.m[3 * i + j] = ul[i] * vl[j];
  return r;
}

RFM_HD Mat3 mat_add(Mat3 a, const Mat3& b) {
  for (int k = 0; k < 9; ++k) a.m[k] += b.m[k];
  return a;
}

// Backward of normalized(v) = v / max(|v|, 1e-12): (g - v (g.v) / n^2) / n, or g / 1e-12 where
// the clamp holds (F.normalize's autograd).
RFM_HD Vec3 normalized_bwd(Vec3 v, Vec3 grad) {
  const float norm = sqrtf(dot(v, v));
  if (!(norm >= MIN_NORM)) return scaled(grad, 1.0f / MIN_NORM);
  return scaled(sub(grad, scaled(v, dot(grad, v) / (norm * norm))), 1.0f / norm);
}

// ---------------------------------------------------------------- stage 1 backward ------------

RFM_HD Mat3 negated(Mat3 a) {
  for (int k = 0; k < 9; ++k) a.m[k] = -a.m[k];
  return a;
}

// A + A^T.
RFM_HD Mat3 symmetrized(const Mat3& a) { return mat_add(a, transpose(a)); }

// -X^-T G X^-T: the gradient of X from G, the gradient of its inverse X^-1 (given as x_inv).
RFM_HD Mat3 inverse_bwd(const Mat3& x_inv, const Mat3& g) {
  const Mat3 x_inv_t = transpose(x_inv);
  return negated(mul(mul(x_inv_t, g), x_inv_t));
}

// dL/d (log_scales, corr_logits) of precompute_gaussian, given dL/d its s_c, gain and s_dd_inv;
// render/reference/precompute.py's precompute_backward (torch autograd through the block form).
// Reverse mode through the forward's steps, with R = (I + M M^T)^-1 B^-1 and T = M^T R, so
// gain = A_pp T; the solves B^-1 X count as the products B^-1 X (the gradient reaching B's upper
// triangle, which torch drops, meets factor entries that are zero). Every factor entry is
// s_row * u: d log s_row collects g * entry over its row, d c collects g * s_row * 2 sig (1 - sig).
// An all-zero cotangent gives zeros (a culled Gaussian, NaN or Inf parameters included).
RFM_HD void precompute_gaussian_bwd(const float log_scales[6], const float corr_logits[15],
                                    const Mat3& g_s_c, const Mat3& g_gain, const Mat3& g_s_dd_inv,
                                    float g_log_scales[6], float g_corr_logits[15]) {
  for (int k = 0; k < 6; ++k) g_log_scales[k] = 0.0f;
  for (int k = 0; k < 15; ++k) g_corr_logits[k] = 0.0f;
  bool zero = true;
  for (int k = 0; k < 9; ++k)
    zero = zero && g_s_c.m[k] == 0.0f && g_gain.m[k] == 0.0f && g_s_dd_inv.m[k] == 0.0f;
  if (zero) return;
  const SlicingBlocks fwd = slicing_blocks(log_scales, corr_logits);  // the forward's terms
  const Mat3 &a_pp = fwd.a_pp, &a_dp = fwd.a_dp, &b = fwd.b, &m = fwd.m, &b_inv = fwd.b_inv;
  const Mat3 &p_inv = fwd.p_inv, &q_inv = fwd.q_inv;
  const Mat3 m_t = transpose(m);
  const Mat3 r = mul(p_inv, b_inv);
  const Mat3 t = mul(m_t, r);
  const Mat3 b_inv_t = transpose(b_inv);
  // s_c = A_pp Q^-1 A_pp^T and gain = A_pp T
  const Mat3 g_a_pp = mat_add(
      mat_add(mul(mul(g_s_c, a_pp), transpose(q_inv)), mul(mul(transpose(g_s_c), a_pp), q_inv)),
      mul(g_gain, transpose(t)));
  const Mat3 g_q_inv = mul(mul(transpose(a_pp), g_s_c), a_pp);
  const Mat3 g_t = mul(transpose(a_pp), g_gain);
  // T = M^T R, R = P^-1 B^-1, s_dd_inv = B^-T P^-1 B^-1
  Mat3 g_m = mul(r, transpose(g_t));
  const Mat3 g_r = mul(m, g_t);
  const Mat3 g_p_inv = mat_add(mul(g_r, b_inv_t), mul(mul(b_inv, g_s_dd_inv), b_inv_t));
  const Mat3 g_b_inv =
      mat_add(mul(transpose(p_inv), g_r), mat_add(mul(mul(p_inv, b_inv), transpose(g_s_dd_inv)),
                                                  mul(mul(transpose(p_inv), b_inv), g_s_dd_inv)));
  // Q = I + M^T M, P = I + M M^T
  g_m = mat_add(g_m, mul(m, symmetrized(inverse_bwd(q_inv, g_q_inv))));
  g_m = mat_add(g_m, mul(symmetrized(inverse_bwd(p_inv, g_p_inv)), m));
  // M = B^-1 A_dp, and B^-1
  const Mat3 g_a_dp = mul(b_inv_t, g_m);
  const Mat3 g_b = mat_add(negated(mul(g_a_dp, m_t)), inverse_bwd(b_inv, g_b_inv));
  // onto the factor's entries s_row * u
  const Mat3* blocks[3][2] = {{&a_pp, &g_a_pp}, {&a_dp, &g_a_dp}, {&b, &g_b}};
  for (int which = 0; which < 3; ++which) {
    const int row0 = which == 0 ? 0 : 3, col0 = which == 2 ? 3 : 0;
    const Mat3& entry = *blocks[which][0];
    const Mat3& grad = *blocks[which][1];
    for (int i = 0; i < 3; ++i) {
      const int row = row0 + i;
      for (int j = 0; j < 3; ++j) {
        const int col = col0 + j;
        if (col > row) continue;
        g_log_scales[row] += grad.m[3 * i + j] * entry.m[3 * i + j];
        if (col == row) continue;
        const float sig = fwd.values.sig[row * (row - 1) / 2 + col];
        g_corr_logits[row * (row - 1) / 2 + col] =
            grad.m[3 * i + j] * fwd.values.scale[row] * 2.0f * sig * (1.0f - sig);
      }
    }
  }
}

// ---------------------------------------------------------------- stage 2 backward ------------

// What slice_project's outputs receive (dL/d each), per Gaussian.
struct ProjectionGrad {
  Vec2 mean2d;   // 1/px
  Conic conic;   // px^2
  float depth;   // 1/mm
  float opacity;
  Vec3 color;
};

// dL/d each input of slice_project, per Gaussian.
struct GaussianGrad {
  Vec3 mean, dir_mean;
  Mat3 s_c, gain, s_dd_inv;
  float opacity_logit;
  Vec3 rgb;
  float sh[9], specular_sh[9];
};

// Backward of shade_gaussian: fills g->rgb, g->sh and g->specular_sh (the axis is the camera's,
// so the colour does not depend on the Gaussian's position). The white term adds to all three
// channels: its gradient is the sum of theirs.
RFM_HD void shade_gaussian_bwd(Vec3 axis, Vec3 rgb, const float sh[9], const float specular_sh[9],
                               Vec3 g_color, GaussianGrad* g) {
  float basis[9];
  sh_basis(axis, basis);
  float shading = 0.0f, white = 0.0f;
  for (int k = 0; k < 9; ++k) shading += sh[k] * basis[k];
  for (int k = 0; k < 9; ++k) white += specular_sh[k] * basis[k];
  g->rgb = scaled(g_color, clamp_min(shading, 0.0f));
  const float g_shading = shading >= 0.0f ? dot(g_color, rgb) : 0.0f;
  const float g_white = white >= 0.0f ? g_color.x + g_color.y + g_color.z : 0.0f;
  for (int k = 0; k < 9; ++k) g->sh[k] = g_shading * basis[k];
  for (int k = 0; k < 9; ++k) g->specular_sh[k] = g_white * basis[k];
}

// Backward of ewa_covariance at p (z already made safe): dL/d(a, b, c) -> adds dL/dS_c to
// *g_s_c, returns dL/dp. b is the (0, 1) entry t0^T S_c t1 (torch reads cov[:, 0, 1]), so
// dL/dS_c is not symmetric, as autograd's is not.
RFM_HD Vec3 ewa_covariance_bwd(Vec3 p, const Mat3& s_c, const Camera& cam, float g_a, float g_b,
                               float g_c, Mat3* g_s_c) {
  const float rx = p.x / p.z, ry = p.y / p.z;
  const float cx = clamp_max(clamp_min(rx, -cam.lim_x), cam.lim_x);
  const float cy = clamp_max(clamp_min(ry, -cam.lim_y), cam.lim_y);
  const float tx = cx * p.z, ty = cy * p.z;
  const float z2 = p.z * p.z;
  const float j00 = cam.fx / p.z, j02 = -cam.fx * tx / z2;
  const float j11 = cam.fy / p.z, j12 = -cam.fy * ty / z2;
  const float* r = cam.rotation.m;
  const Vec3 r0 = {r[0], r[1], r[2]}, r1 = {r[3], r[4], r[5]}, r2 = {r[6], r[7], r[8]};
  const Vec3 t0 = add(scaled(r0, j00), scaled(r2, j02));  // rows of J R
  const Vec3 t1 = add(scaled(r1, j11), scaled(r2, j12));

  *g_s_c = mat_add(mat_add(outer(t0, t0, g_a), outer(t0, t1, g_b)), outer(t1, t1, g_c));
  const Vec3 g_t0 = add(scaled(symmetric_vec(s_c, t0), g_a), scaled(mat_vec(s_c, t1), g_b));
  const Vec3 g_t1 = add(scaled(symmetric_vec(s_c, t1), g_c), scaled(mat_t_vec(s_c, t0), g_b));
  const float g_j00 = dot(g_t0, r0), g_j02 = dot(g_t0, r2);
  const float g_j11 = dot(g_t1, r1), g_j12 = dot(g_t1, r2);

  const float z3 = z2 * p.z;
  const float g_tx = -g_j02 * cam.fx / z2, g_ty = -g_j12 * cam.fy / z2;
  Vec3 g_p = {0.0f, 0.0f,
              -g_j00 * cam.fx / z2 + g_j02 * 2.0f * cam.fx * tx / z3 - g_j11 * cam.fy / z2 +
                  g_j12 * 2.0f * cam.fy * ty / z3 + g_tx * cx + g_ty * cy};
  if (rx >= -cam.lim_x && rx <= cam.lim_x) {  // the clamp passes the gradient
    const float g_rx = g_tx * p.z;
    g_p.x += g_rx / p.z;
    g_p.z -= g_rx * p.x / z2;
  }
  if (ry >= -cam.lim_y && ry <= cam.lim_y) {
    const float g_ry = g_ty * p.z;
    g_p.y += g_ry / p.z;
    g_p.z -= g_ry * p.y / z2;
  }
  return g_p;
}

// Backward of project_gaussian's means2d, conics, depths and opacity: fills g->s_c and *g_alpha_c
// (dL/dalpha_c), returns dL/dmu_c.
RFM_HD Vec3 project_gaussian_bwd(Vec3 mu_c, const Mat3& s_c, float alpha_c, const Camera& cam,
                                 const ProjectionGrad& grad, GaussianGrad* g, float* g_alpha_c) {
  Vec3 p = add(mat_vec(cam.rotation, mu_c), cam.translation);
  const bool in_front = p.z > NEAR_PLANE_MM;
  p.z = in_front ? p.z : 1.0f;
  float sharp_a, b, sharp_c;
  ewa_covariance(p, s_c, cam, &sharp_a, &b, &sharp_c);
  const float a = sharp_a + COVARIANCE_BLUR_PX2, c = sharp_c + COVARIANCE_BLUR_PX2;
  const float det = a * c - b * b;
  const float safe_det = det > 0.0f ? det : 1.0f;

  // conic = (c, -b, a) / safe_det
  const Conic gc = grad.conic;
  float g_a = gc.c / safe_det, g_b = -gc.b / safe_det, g_c = gc.a / safe_det;
  if (det > 0.0f) {
    const float g_det = -(gc.a * c - gc.b * b + gc.c * a) / (safe_det * safe_det);
    g_a += g_det * c;
    g_c += g_det * a;
    g_b -= 2.0f * b * g_det;
  }

  // opacity = alpha_c sqrt(ratio), ratio = max((sharp_a sharp_c - b^2) / safe_det, floor)
  const float ratio = coverage_ratio(sharp_a, b, sharp_c, safe_det);
  const float factor = sqrtf(ratio);
  *g_alpha_c = grad.opacity * factor;
  if ((sharp_a * sharp_c - b * b) / safe_det >= MIN_COVERAGE_RATIO) {  // the floor passes it
    const float g_ratio = grad.opacity * alpha_c * 0.5f / factor;
    if (det > 0.0f) {
      // d ratio / d(a, b, c) in closed form: with a = sharp_a + s, c = sharp_c + s the quotient
      // rule's terms cancel to s (sharp_c c + b^2), -2 b s (a + c - s) and s (sharp_a a + b^2),
      // over det^2; summed term by term they would lose the difference to rounding when the
      // footprint is large.
      const float scaled = g_ratio * COVARIANCE_BLUR_PX2 / (det * det);
      g_a += scaled * (sharp_c * c + b * b);
      g_c += scaled * (sharp_a * a + b * b);
      g_b -= scaled * 2.0f * b * (a + c - COVARIANCE_BLUR_PX2);
    } else {  // ratio = sharp_a sharp_c - b^2 over a safe det of 1
      g_a += g_ratio * sharp_c;
      g_c += g_ratio * sharp_a;
      g_b -= g_ratio * 2.0f * b;
    }
  }
  Vec3 g_p = ewa_covariance_bwd(p, s_c, cam, g_a, g_b, g_c, &g->s_c);

  // mean2d = (fx x / z + cx, fy y / z + cy)
  g_p.x += grad.mean2d.x * cam.fx / p.z;
  g_p.y += grad.mean2d.y * cam.fy / p.z;
  g_p.z -= (grad.mean2d.x * cam.fx * p.x + grad.mean2d.y * cam.fy * p.y) / (p.z * p.z);
  g_p.z = (in_front ? g_p.z : 0.0f) + grad.depth;  // depths are the unclamped z
  return mat_t_vec(cam.rotation, g_p);
}

// Backward of slice_gaussian: dL/dmu_c and dL/dalpha_c -> g->mean, dir_mean, gain, s_dd_inv,
// opacity_logit.
RFM_HD void slice_gaussian_bwd(Vec3 mean, Vec3 dir_mean, const Mat3& gain, const Mat3& s_dd_inv,
                               float opacity_logit, Vec3 camera_centre, Vec3 g_mu_c, float g_alpha,
                               GaussianGrad* g) {
  const Vec3 view = sub(mean, camera_centre);
  const Vec3 delta = sub(normalized(view), normalized(dir_mean));
  const float opacity = sigmoid(opacity_logit);
  const float falloff = expf(-OPACITY_LAMBDA * quadratic_form(s_dd_inv, delta));
  g->opacity_logit = g_alpha * falloff * (1.0f - opacity) * opacity;
  const float g_quad = -OPACITY_LAMBDA * (g_alpha * opacity * falloff);
  g->s_dd_inv = outer(delta, delta, g_quad);
  g->gain = outer(g_mu_c, delta, 1.0f);
  const Vec3 g_delta = add(scaled(symmetric_vec(s_dd_inv, delta), g_quad), mat_t_vec(gain, g_mu_c));
  g->mean = add(g_mu_c, normalized_bwd(view, g_delta));
  g->dir_mean = normalized_bwd(dir_mean, scaled(g_delta, -1.0f));
}

RFM_HD bool is_zero(const ProjectionGrad& g) {
  return g.mean2d.x == 0.0f && g.mean2d.y == 0.0f && g.conic.a == 0.0f && g.conic.b == 0.0f &&
         g.conic.c == 0.0f && g.depth == 0.0f && g.opacity == 0.0f && g.color.x == 0.0f &&
         g.color.y == 0.0f && g.color.z == 0.0f;
}

// dL/d slice_project's inputs for one Gaussian (recomputing its forward), given dL/d its outputs.
RFM_HD GaussianGrad slice_project_bwd(Vec3 mean, Vec3 dir_mean, const Mat3& s_c, const Mat3& gain,
                                      const Mat3& s_dd_inv, float opacity_logit, Vec3 rgb,
                                      const float sh[9], const float specular_sh[9],
                                      Vec3 camera_centre, const Camera& cam,
                                      const ProjectionGrad& grad) {
  GaussianGrad g = {};
  if (is_zero(grad)) return g;
  Vec3 mu_c;
  float alpha;
  slice_gaussian(mean, dir_mean, gain, s_dd_inv, opacity_logit, camera_centre, &mu_c, &alpha);
  float g_alpha;
  const Vec3 g_mu_c = project_gaussian_bwd(mu_c, s_c, alpha, cam, grad, &g, &g_alpha);
  shade_gaussian_bwd(view_axis(cam), rgb, sh, specular_sh, grad.color, &g);
  slice_gaussian_bwd(mean, dir_mean, gain, s_dd_inv, opacity_logit, camera_centre, g_mu_c, g_alpha,
                     &g);
  return g;
}

// ---------------------------------------------------------------- stage 4 backward ------------

// One pixel walked back to front. With rgb = sum w c + (1 - alpha) background, alpha = sum w and
// depth = sum(w z) / alpha (blend.py), dL/dw of one Gaussian is
//   g_rgb . c + g_weight + g_depth_sum z,
// g_weight = g_alpha - g_rgb . background - g_depth depth / alpha, g_depth_sum = g_depth / alpha.
struct PixelGradState {
  float t;            // transmittance in front of the Gaussians walked so far
  float behind;       // sum of dL/dw w over the Gaussians walked so far (those behind)
  Vec3 g_rgb;         // dL/d the pixel's rgb
  float g_weight;     // the part of dL/dw that does not depend on the Gaussian
  float g_depth_sum;  // dL/d sum(w z)
};

// The walk's start from blend_fwd's outputs at this pixel: final_t (T behind the last
// contributing Gaussian), alpha and depth, and dL/d the pixel's rgb, alpha and depth.
RFM_HD PixelGradState start_pixel_bwd(float final_t, float alpha, float depth, Vec3 background,
                                      Vec3 g_rgb, float g_alpha, float g_depth) {
  PixelGradState s = {final_t, 0.0f, g_rgb, 0.0f, 0.0f};
  if (alpha > 0.0f) {  // otherwise no Gaussian contributed: nothing to walk
    s.g_depth_sum = g_depth / alpha;
    s.g_weight = g_alpha - dot(g_rgb, background) - g_depth * depth / alpha;
  }
  return s;
}

// dL/d one Gaussian's blend inputs from one pixel.
struct FootprintGrad {
  Vec2 mean2d;
  Conic conic;
  float opacity;
  Vec3 color;
  float depth;
};

// Backward of pixel_alpha: dL/dalpha -> g->mean2d, conic, opacity (zero where alpha is capped
// at 0.99 or power > 0).
RFM_HD void pixel_alpha_bwd(Vec2 mean2d, Conic conic, float opacity, int px, int py, float g_alpha,
                            FootprintGrad* g) {
  const Vec2 d = pixel_offset(mean2d, px, py);
  const float power = footprint_power(d, conic);
  const float falloff = expf(clamp_max(power, 0.0f));
  const bool passes = power <= 0.0f && opacity * falloff <= MAX_ALPHA;
  const float g_raw = passes ? g_alpha : 0.0f;
  g->opacity = g_raw * falloff;
  const float g_power = g_raw * opacity * falloff;
  g->mean2d = {-g_power * (conic.a * d.x + conic.b * d.y),
               -g_power * (conic.c * d.y + conic.b * d.x)};
  g->conic = {-0.5f * g_power * d.x * d.x, -g_power * d.x * d.y, -0.5f * g_power * d.y * d.y};
}

// The next Gaussian of the pixel's walk, back to front over the instances blend_fwd consumed
// (n_consumed). Returns whether it contributed in the forward pass (alpha >= 1/255, as
// blend_step decides); if so, fills *g with its gradients from this pixel and undoes its
// T *= (1 - alpha). dL/dalpha = dL/dw T - (sum behind of dL/dw w) / (1 - alpha).
RFM_HD bool blend_step_bwd(PixelGradState& s, Vec2 mean2d, Conic conic, float opacity, Vec3 color,
                           float depth, int px, int py, FootprintGrad* g) {
  const float alpha = pixel_alpha(mean2d, conic, opacity, px, py);
  if (!(alpha >= MIN_ALPHA)) return false;
  const float one_minus = 1.0f - alpha;
  const float t = s.t / one_minus;  // T in front of this Gaussian
  const float w = alpha * t;
  const float g_w = dot(s.g_rgb, color) + s.g_weight + s.g_depth_sum * depth;
  const float g_alpha = g_w * t - s.behind / one_minus;
  s.behind += g_w * w;
  s.t = t;
  g->color = scaled(s.g_rgb, w);
  g->depth = w * s.g_depth_sum;
  pixel_alpha_bwd(mean2d, conic, opacity, px, py, g_alpha, g);
  return true;
}

}  // namespace renderfm

#endif  // RENDERFM_GAUSSIAN_MATH_BWD_CUH
