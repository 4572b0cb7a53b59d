// Per-Gaussian views of the flat float arrays the host harnesses read and write: element g of
// an [N, 3] array as a Vec3, of an [N, 3, 3] array as a Mat3, and writing `count` values into
// row g of an [N, count] array.
#ifndef RENDERFM_HARNESS_ARRAYS_H
#define RENDERFM_HARNESS_ARRAYS_H

#include <cstddef>
#include <initializer_list>
#include <vector>

#include "gaussian_math.cuh"

namespace harness {

inline renderfm::Vec3 vec3(const std::vector<float>& a, std::size_t g) {
  return {a[3 * g], a[3 * g + 1], a[3 * g + 2]};
}

inline renderfm::Mat3 mat3(const std::vector<float>& a, std::size_t g) {
  renderfm::Mat3 m;
  for (int k = 0; k < 9; ++k) m.m[k] = a[9 * g + k];
  return m;
}

inline void put(std::vector<float>& a, std::size_t g, const float* values, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) a[count * g + k] = values[k];
}

inline void put(std::vector<float>& a, std::size_t g, std::initializer_list<float> values) {
  put(a, g, values.begin(), values.size());
}

inline void put(std::vector<float>& a, std::size_t g, renderfm::Vec3 v) {
  put(a, g, {v.x, v.y, v.z});
}

}  // namespace harness

#endif  // RENDERFM_HARNESS_ARRAYS_H
