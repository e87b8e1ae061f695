#pragma once
// Byte-level GGUF builder for tests that craft malformed files, plus a temp-file helper.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "model/gguf.h"

namespace hearth::testing {

// Appends little-endian GGUF fields; nothing is validated, so any malformation can be expressed.
struct GgufBytes {
  std::vector<uint8_t> b;

  template <typename T>
  GgufBytes& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  GgufBytes& u8(uint8_t v) { return put(v); }
  GgufBytes& u32(uint32_t v) { return put(v); }
  GgufBytes& u64(uint64_t v) { return put(v); }
  GgufBytes& raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  GgufBytes& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  GgufBytes& pad_to(size_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }

  GgufBytes& header(uint64_t n_tensors, uint64_t n_kvs, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kvs);
  }
  GgufBytes& kv_u32(std::string_view key, uint32_t v) {
    return str(key).u32(static_cast<uint32_t>(GgufType::kU32)).u32(v);
  }
  GgufBytes& kv_string(std::string_view key, std::string_view v) {
    return str(key).u32(static_cast<uint32_t>(GgufType::kString)).str(v);
  }
  // dims in ggml order (innermost first).
  GgufBytes& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t ggml_type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(ggml_type).u64(offset);
  }
};

// A file in a per-test temp directory, removed at destruction.
class TempGguf {
 public:
  TempGguf() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("hearth_gguf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
  }
  ~TempGguf() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempGguf(const TempGguf&) = delete;
  TempGguf& operator=(const TempGguf&) = delete;

  std::string path(std::string_view name = "model.gguf") const { return (dir_ / name).string(); }

  // Writes `bytes` to a file and opens it with GgufFile::open.
  Result<std::shared_ptr<GgufFile>> open(std::span<const uint8_t> bytes,
                                         std::string_view name = "model.gguf") {
    const std::string p = path(name);
    Status s = write_file(p, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (!s.is_ok()) return s;
    return GgufFile::open(p);
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace hearth::testing
