#pragma once
// Read-only memory mapping of a whole file. Weights stay mapped; no second copy in RAM.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace hearth {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  std::span<const uint8_t> bytes() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Reads a whole (small) file into a string, refusing files larger than max_bytes.
Result<std::string> read_file(const std::string& path, uint64_t max_bytes);
Status write_file(const std::string& path, std::string_view contents);

// Tells the kernel this process no longer needs the whole pages inside [p, p + n) of a read-only file
// mapping: they leave the process's resident set (the page cache keeps them; touching them again
// faults them back in). Used after weights are converted at load so RSS holds only the copies.
void release_mapped_pages(const void* p, size_t n);

// Zero-filled anonymous memory for large long-lived buffers (converted weights). Buffers of 2 MiB or
// more ask for transparent huge pages (MADV_HUGEPAGE): streaming gigabytes of weights per token through
// 4 KiB pages costs a TLB miss every page.
class AnonymousBuffer {
 public:
  static Result<AnonymousBuffer> allocate(size_t bytes);
  AnonymousBuffer() = default;
  AnonymousBuffer(AnonymousBuffer&& o) noexcept;
  AnonymousBuffer& operator=(AnonymousBuffer&& o) noexcept;
  AnonymousBuffer(const AnonymousBuffer&) = delete;
  AnonymousBuffer& operator=(const AnonymousBuffer&) = delete;
  ~AnonymousBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hearth
