#include "model/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <new>
#include <optional>
#include <set>
#include <system_error>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/checked_math.h"
#include "core/utf8.h"

// write_safetensors: the streaming writer.
namespace hearth {
namespace {

// strerror(errno), thread-safe.
std::string errno_text() {
  return std::error_code(errno, std::generic_category()).message();
}

// A file descriptor that writes everything or says why not.
class OutFile {
 public:
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return make_error(ErrorCode::kIo, "{}: cannot create: {}", path, errno_text());
    return Status::ok();
  }
  Status write(std::span<const uint8_t> bytes, const std::string& path) {
    while (!bytes.empty()) {
      const size_t chunk = std::min<size_t>(bytes.size(), size_t{1} << 30);
      const ssize_t w = ::write(fd_, bytes.data(), chunk);
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_error(ErrorCode::kIo, "{}: write failed: {}", path, errno_text());
      }
      bytes = bytes.subspan(static_cast<size_t>(w));
    }
    return Status::ok();
  }
  Status sync_and_close(const std::string& path) {
    if (::fsync(fd_) != 0) return make_error(ErrorCode::kIo, "{}: fsync failed: {}", path, errno_text());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return make_error(ErrorCode::kIo, "{}: close failed: {}", path, errno_text());
    return Status::ok();
  }

 private:
  int fd_ = -1;
};

Result<std::string> build_header(const std::string& path, std::span<const SafetensorsTensorToWrite> tensors,
                                 const std::map<std::string, std::string>& metadata,
                                 std::vector<uint64_t>* sizes) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) {
      if (!utf8::is_valid(k) || !utf8::is_valid(v)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: __metadata__ key '{}' or its value is not valid UTF-8", path, k);
      }
      meta[k] = v;
    }
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const SafetensorsTensorToWrite& t : tensors) {
    if (std::string problem = safetensors_name_problem(t.name); !problem.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': {}", path, t.name, problem);
    }
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': duplicate or reserved name", path,
                        t.name);
    }
    if (dtype_info(t.dtype).is_quantized) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': dtype {} has no safetensors spelling",
                        path, t.name, dtype_name(t.dtype));
    }
    if (t.shape.size() > SafetensorsLimits::kMaxDims) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': shape has {} dims, more than {}", path,
                        t.name, t.shape.size(), SafetensorsLimits::kMaxDims);
    }
    auto nbytes = tensor_nbytes(t.dtype, t.shape);
    auto end = nbytes ? checked_add(offset, *nbytes) : std::nullopt;
    if (!nbytes || !end || !checked_product(t.shape)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': shape {} overflows 64-bit sizes", path,
                        t.name, fmt::format("[{}]", fmt::join(t.shape, ", ")));
    }
    if (!t.fill) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': no fill function", path, t.name);
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, *end}}};
    sizes->push_back(*nbytes);
    offset = *end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > SafetensorsLimits::kMaxHeaderBytes) {
    return make_error(ErrorCode::kOutOfRange, "{}: header of {} bytes exceeds the {} byte limit", path,
                      text.size(), SafetensorsLimits::kMaxHeaderBytes);
  }
  return text;
}

Status write_all(const std::string& path, const std::string& tmp,
                 std::span<const SafetensorsTensorToWrite> tensors, const std::string& header,
                 const std::vector<uint64_t>& sizes) {
  OutFile out;
  HEARTH_RETURN_IF_ERROR(out.open(tmp));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  HEARTH_RETURN_IF_ERROR(out.write(len, tmp));
  HEARTH_RETURN_IF_ERROR(out.write({reinterpret_cast<const uint8_t*>(header.data()), header.size()}, tmp));

  std::unique_ptr<uint8_t[]> buffer;  // reused; grows to the largest tensor
  uint64_t capacity = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = sizes[i];
    if (n > capacity) {
      buffer.reset();
      buffer.reset(new uint8_t[n]);
      capacity = n;
    }
    std::span<uint8_t> bytes(buffer.get(), static_cast<size_t>(n));
    Status filled = tensors[i].fill(bytes);
    if (!filled.is_ok()) return filled.with_context(fmt::format("{}: tensor '{}'", path, tensors[i].name));
    HEARTH_RETURN_IF_ERROR(out.write(bytes, tmp));
  }
  return out.sync_and_close(tmp);
}

}  // namespace

Status write_safetensors(const std::string& path, std::span<const SafetensorsTensorToWrite> tensors,
                         const std::map<std::string, std::string>& metadata) {
  const std::string tmp = path + ".tmp";
  try {
    std::vector<uint64_t> sizes;
    HEARTH_ASSIGN_OR_RETURN(std::string header, build_header(path, tensors, metadata, &sizes));
    Status st = write_all(path, tmp, tensors, header, sizes);
    if (st.is_ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
      st = make_error(ErrorCode::kIo, "{}: cannot rename {} into place: {}", path, tmp, errno_text());
    }
    if (!st.is_ok()) ::unlink(tmp.c_str());
    return st;
  } catch (const std::bad_alloc&) {
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while writing", path);
  } catch (const std::exception& e) {
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kInternal, "{}: write failed: {}", path, e.what());
  }
}

}  // namespace hearth
