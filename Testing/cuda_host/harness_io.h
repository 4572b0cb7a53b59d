// Binary file I/O shared by the host harnesses: raw little-endian arrays read from the input
// file and written to the output file that main() opens (see each harness's usage line).
#ifndef RENDERFM_HARNESS_IO_H
#define RENDERFM_HARNESS_IO_H

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace harness {

inline FILE* in_file = nullptr;
inline FILE* out_file = nullptr;

// Open IN and OUT from the command line; false (after a usage message) if that fails.
inline bool open_files(int argc, char** argv, const char* name) {
  if (argc == 3 && (in_file = std::fopen(argv[1], "rb")) &&
      (out_file = std::fopen(argv[2], "wb")))
    return true;
  std::fprintf(stderr, "usage: %s IN OUT\n", name);
  return false;
}

// The next `count` values of type T from the input; exits with status 2 if it is too short.
template <typename T>
std::vector<T> read(std::size_t count) {
  std::vector<T> values(count);
  if (std::fread(values.data(), sizeof(T), count, in_file) != count) {
    std::fprintf(stderr, "harness: input file too short\n");
    std::exit(2);
  }
  return values;
}

template <typename T>
void write(const std::vector<T>& values) {
  std::fwrite(values.data(), sizeof(T), values.size(), out_file);
}

// Close the output; the process's exit status.
inline int close_output() { return std::fclose(out_file) == 0 ? 0 : 1; }

}  // namespace harness

#endif  // RENDERFM_HARNESS_IO_H
