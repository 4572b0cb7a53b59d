// Row g of a row-major [N, k] float array as the math header's types, 64-bit indices: the loads
// and stores of the CUDA kernels (through kernel_io.cuh) and of the CPU loops (../cpu/kernels.cpp).
#ifndef RENDERFM_ARRAY_IO_CUH
#define RENDERFM_ARRAY_IO_CUH

#include "gaussian_math.cuh"

namespace renderfm {

RFM_HD Vec3 load_vec3(const float* p, long long g) {
  return {p[3 * g], p[3 * g + 1], p[3 * g + 2]};
}

RFM_HD Mat3 load_mat3(const float* p, long long g) {
  Mat3 a;
  for (int k = 0; k < 9; ++k) a.m[k] = p[9 * g + k];
  return a;
}

RFM_HD void store_vec3(float* p, long long g, Vec3 v) {
  p[3 * g] = v.x;
  p[3 * g + 1] = v.y;
  p[3 * g + 2] = v.z;
}

RFM_HD void store_mat3(float* p, long long g, const Mat3& a) {
  for (int k = 0; k < 9; ++k) p[9 * g + k] = a.m[k];
}

}  // namespace renderfm

#endif  // RENDERFM_ARRAY_IO_CUH
