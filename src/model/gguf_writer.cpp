#include "model/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "core/checked_math.h"

namespace hearth {

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (!is_power_of_two(alignment) || alignment > GgufLimits::kMaxAlignment) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: alignment {} is not a power of two <= {}",
                        alignment, GgufLimits::kMaxAlignment);
    alignment_ = GgufLimits::kDefaultAlignment;
  }
}

template <typename T>
void GgufWriter::put(T v) {
  const size_t at = kv_bytes_.size();
  kv_bytes_.resize(at + sizeof(T));
  std::memcpy(kv_bytes_.data() + at, &v, sizeof(T));
}

void GgufWriter::put_string(std::string_view s) {
  put<uint64_t>(s.size());
  kv_bytes_.insert(kv_bytes_.end(), s.begin(), s.end());
}

GgufWriter& GgufWriter::begin_kv(std::string_view key, GgufType type) {
  if (!keys_.emplace(key).second && error_.is_ok()) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: duplicate metadata key '{}'", key);
  }
  ++kv_count_;
  put_string(key);
  put<uint32_t>(static_cast<uint32_t>(type));
  return *this;
}

GgufWriter& GgufWriter::add_u8(std::string_view key, uint8_t v) {
  begin_kv(key, GgufType::kU8).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_i8(std::string_view key, int8_t v) {
  begin_kv(key, GgufType::kI8).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_u16(std::string_view key, uint16_t v) {
  begin_kv(key, GgufType::kU16).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_i16(std::string_view key, int16_t v) {
  begin_kv(key, GgufType::kI16).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_u32(std::string_view key, uint32_t v) {
  begin_kv(key, GgufType::kU32).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_i32(std::string_view key, int32_t v) {
  begin_kv(key, GgufType::kI32).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_u64(std::string_view key, uint64_t v) {
  begin_kv(key, GgufType::kU64).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_i64(std::string_view key, int64_t v) {
  begin_kv(key, GgufType::kI64).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_f32(std::string_view key, float v) {
  begin_kv(key, GgufType::kF32).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_f64(std::string_view key, double v) {
  begin_kv(key, GgufType::kF64).put(v);
  return *this;
}
GgufWriter& GgufWriter::add_bool(std::string_view key, bool v) {
  begin_kv(key, GgufType::kBool).put<uint8_t>(v ? 1 : 0);
  return *this;
}
GgufWriter& GgufWriter::add_string(std::string_view key, std::string_view v) {
  begin_kv(key, GgufType::kString).put_string(v);
  return *this;
}

GgufWriter& GgufWriter::add_string_array(std::string_view key, std::span<const std::string> v) {
  begin_kv(key, GgufType::kArray);
  put<uint32_t>(static_cast<uint32_t>(GgufType::kString));
  put<uint64_t>(v.size());
  for (const auto& s : v) put_string(s);
  return *this;
}

GgufWriter& GgufWriter::add_string_array(std::string_view key, std::span<const std::string_view> v) {
  begin_kv(key, GgufType::kArray);
  put<uint32_t>(static_cast<uint32_t>(GgufType::kString));
  put<uint64_t>(v.size());
  for (auto s : v) put_string(s);
  return *this;
}

GgufWriter& GgufWriter::add_scalar_array(std::string_view key, GgufType element_type, uint64_t count,
                                         std::span<const uint8_t> elements) {
  const uint64_t size = gguf_scalar_size(element_type);
  if ((size == 0 || count * size != elements.size()) && error_.is_ok()) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: array '{}' of {} x {} has {} bytes", key,
                        count, gguf_type_name(element_type), elements.size());
  }
  begin_kv(key, GgufType::kArray);
  put<uint32_t>(static_cast<uint32_t>(element_type));
  put<uint64_t>(count);
  kv_bytes_.insert(kv_bytes_.end(), elements.begin(), elements.end());
  return *this;
}

GgufWriter& GgufWriter::add_i32_array(std::string_view key, std::span<const int32_t> v) {
  return add_scalar_array(
      key, GgufType::kI32, v.size(),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()));
}
GgufWriter& GgufWriter::add_u32_array(std::string_view key, std::span<const uint32_t> v) {
  return add_scalar_array(
      key, GgufType::kU32, v.size(),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()));
}
GgufWriter& GgufWriter::add_f32_array(std::string_view key, std::span<const float> v) {
  return add_scalar_array(
      key, GgufType::kF32, v.size(),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()));
}

GgufWriter& GgufWriter::add_raw(std::string_view key, uint32_t type_id, std::span<const uint8_t> encoded) {
  begin_kv(key, static_cast<GgufType>(type_id));
  kv_bytes_.insert(kv_bytes_.end(), encoded.begin(), encoded.end());
  return *this;
}

GgufWriter& GgufWriter::add_tensor_impl(PendingTensor t) {
  for (const auto& other : tensors_) {
    if (other.name == t.name && error_.is_ok()) {
      error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: duplicate tensor name '{}'", t.name);
    }
  }
  if ((t.shape.empty() || t.shape.size() > GgufLimits::kMaxDims) && error_.is_ok()) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: tensor '{}' has {} dims, GGUF allows 1..{}",
                        t.name, t.shape.size(), GgufLimits::kMaxDims);
  }
  if (!ggml_type_from_dtype(t.dtype) && error_.is_ok()) {
    error_ = make_error(ErrorCode::kUnsupported, "GgufWriter: tensor '{}': {} has no ggml type", t.name,
                        dtype_name(t.dtype));
  }
  auto nbytes = tensor_nbytes(t.dtype, t.shape);
  if (!nbytes && error_.is_ok()) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: tensor '{}': shape does not fit {}", t.name,
                        dtype_name(t.dtype));
  }
  t.nbytes = nbytes.value_or(0);
  if (!t.fill && t.bytes.size() != t.nbytes && error_.is_ok()) {
    error_ = make_error(ErrorCode::kInvalidArgument, "GgufWriter: tensor '{}' needs {} bytes, got {}", t.name,
                        t.nbytes, t.bytes.size());
  }
  t.offset = data_size_;
  data_size_ = align_up(data_size_ + t.nbytes, alignment_);
  tensors_.push_back(std::move(t));
  return *this;
}

GgufWriter& GgufWriter::add_tensor(std::string_view name, DType dtype, std::vector<uint64_t> shape,
                                   std::span<const uint8_t> bytes) {
  PendingTensor t;
  t.name = std::string(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.assign(bytes.begin(), bytes.end());
  return add_tensor_impl(std::move(t));
}

GgufWriter& GgufWriter::add_tensor(std::string_view name, DType dtype, std::vector<uint64_t> shape,
                                   std::function<Status(std::span<uint8_t>)> fill) {
  PendingTensor t;
  t.name = std::string(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.fill = std::move(fill);
  return add_tensor_impl(std::move(t));
}

Result<std::string> GgufWriter::header() const {
  HEARTH_RETURN_IF_ERROR(error_);
  const bool write_alignment =
      alignment_ != GgufLimits::kDefaultAlignment && !keys_.contains("general.alignment");
  std::string out;
  auto put_raw = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  auto put_u32 = [&](uint32_t v) { put_raw(&v, 4); };
  auto put_u64 = [&](uint64_t v) { put_raw(&v, 8); };
  auto put_str = [&](std::string_view s) {
    put_u64(s.size());
    out.append(s);
  };
  out.append("GGUF");
  put_u32(3);
  put_u64(tensors_.size());
  put_u64(kv_count_ + (write_alignment ? 1 : 0));
  if (write_alignment) {
    put_str("general.alignment");
    put_u32(static_cast<uint32_t>(GgufType::kU32));
    put_u32(alignment_);
  }
  put_raw(kv_bytes_.data(), kv_bytes_.size());
  for (const auto& t : tensors_) {
    put_str(t.name);
    put_u32(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put_u64(*it);  // ggml order
    put_u32(*ggml_type_from_dtype(t.dtype));
    put_u64(t.offset);
  }
  out.resize(align_up(out.size(), alignment_), '\0');
  return out;
}

Status GgufWriter::emit(const std::function<Status(std::span<const uint8_t>)>& sink) const {
  HEARTH_ASSIGN_OR_RETURN(std::string head, header());
  HEARTH_RETURN_IF_ERROR(sink({reinterpret_cast<const uint8_t*>(head.data()), head.size()}));
  std::vector<uint8_t> buf;
  static const uint8_t kZeros[64] = {};
  for (const auto& t : tensors_) {
    std::span<const uint8_t> data = t.bytes;
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      HEARTH_RETURN_IF_ERROR(t.fill(buf).with_context(fmt::format("tensor '{}'", t.name)));
      data = buf;
    }
    HEARTH_RETURN_IF_ERROR(sink(data));
    for (uint64_t pad = align_up(t.nbytes, alignment_) - t.nbytes; pad > 0;) {
      const uint64_t n = std::min<uint64_t>(pad, sizeof(kZeros));
      HEARTH_RETURN_IF_ERROR(sink({kZeros, n}));
      pad -= n;
    }
  }
  return Status::ok();
}

Status GgufWriter::write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kIo, "{}: cannot open for writing", path);
  HEARTH_RETURN_IF_ERROR(emit([&](std::span<const uint8_t> bytes) {
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return out ? Status::ok() : make_error(ErrorCode::kIo, "{}: write failed", path);
  }));
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "{}: write failed", path);
  return Status::ok();
}

Result<std::vector<uint8_t>> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  HEARTH_RETURN_IF_ERROR(emit([&](std::span<const uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
    return Status::ok();
  }));
  return out;
}

}  // namespace hearth
