// GGUF parser. Every size read from the file is checked against the bytes that remain before anything
// is reserved, so a lying header fails fast with memory proportional to the file (RELIABILITY.md).
#include "model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include <fmt/ranges.h>

#include "core/byte_reader.h"
#include "core/checked_math.h"
#include "core/utf8.h"

namespace hearth {

// Smallest encodings, used to bound counts by the bytes left before reserving.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, 1 dim, type, offset
constexpr uint64_t kMinArrayBytes = 4 + 8;                   // element type, count
constexpr uint64_t kMinStringBytes = 8;                      // length

class GgufParser {
 public:
  explicit GgufParser(GgufFile& f) : f_(f), r_(f.bytes_) {}

  Status parse() {
    HEARTH_RETURN_IF_ERROR(parse_header());
    HEARTH_RETURN_IF_ERROR(parse_kvs());
    HEARTH_RETURN_IF_ERROR(parse_alignment());
    HEARTH_RETURN_IF_ERROR(parse_tensor_infos());
    return place_tensors();
  }

 private:
  template <typename... Args>
  Status corrupt(fmt::format_string<Args...> fmt_str, Args&&... args) const {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("{}: {}", f_.path_, fmt::format(fmt_str, std::forward<Args>(args)...)));
  }
  template <typename... Args>
  Status unsupported(fmt::format_string<Args...> fmt_str, Args&&... args) const {
    return Status(ErrorCode::kUnsupported,
                  fmt::format("{}: {}", f_.path_, fmt::format(fmt_str, std::forward<Args>(args)...)));
  }
  Status truncated(std::string_view what) const {
    return corrupt("truncated file: {} bytes, ended at byte {} while reading {}", f_.bytes_.size(),
                   r_.offset(), what);
  }

  template <typename T>
  Status read(T* out, std::string_view what) {
    if (!r_.read(out)) return truncated(what);
    return Status::ok();
  }

  // A u64-length string; `what` names it in errors.
  Status read_string(std::string_view* out, std::string_view what) {
    uint64_t len = 0;
    HEARTH_RETURN_IF_ERROR(read(&len, what));
    if (len > r_.remaining()) {
      return corrupt("{}: string length {} at byte {} runs past the end of the file ({} bytes left)", what,
                     len, r_.offset() - 8, r_.remaining());
    }
    r_.read_bytes(len, out);
    return Status::ok();
  }

  // Keys and tensor names: non-empty, bounded, valid UTF-8.
  Status read_name(std::string_view* out, std::string_view what) {
    uint64_t len = 0;
    HEARTH_RETURN_IF_ERROR(read(&len, what));
    if (len == 0) return corrupt("{} at byte {} is empty", what, r_.offset() - 8);
    if (len > GgufLimits::kMaxKeyBytes) {
      return corrupt("{} at byte {} is {} bytes long, more than the {} byte limit", what, r_.offset() - 8,
                     len, GgufLimits::kMaxKeyBytes);
    }
    if (len > r_.remaining()) {
      return corrupt("{}: string length {} at byte {} runs past the end of the file ({} bytes left)", what,
                     len, r_.offset() - 8, r_.remaining());
    }
    r_.read_bytes(len, out);
    if (size_t bad = utf8::first_invalid(*out); bad != std::string_view::npos) {
      return corrupt("{} at byte {} is not valid UTF-8 (bad byte at position {})", what,
                     r_.offset() - len - 8, bad);
    }
    return Status::ok();
  }

  Status parse_header() {
    std::string_view magic;
    if (!r_.read_bytes(4, &magic)) return truncated("the magic");
    if (magic != "GGUF") return corrupt("not a GGUF file (magic is not \"GGUF\")");
    uint32_t version = 0;
    HEARTH_RETURN_IF_ERROR(read(&version, "the version"));
    const uint32_t swapped = __builtin_bswap32(version);
    if ((version & 0xFFFF) == 0 && swapped >= 1 && swapped <= 3) {
      return unsupported("big-endian GGUF files are not supported (version {} byte-swapped)", swapped);
    }
    if (version == 1) {
      return unsupported("GGUF version 1 is not supported (it used 32-bit counts); re-convert the model");
    }
    if (version != 2 && version != 3) return unsupported("unsupported GGUF version {}", version);
    f_.version_ = version;
    HEARTH_RETURN_IF_ERROR(read(&tensor_count_, "the tensor count"));
    HEARTH_RETURN_IF_ERROR(read(&kv_count_, "the metadata count"));
    if (tensor_count_ > GgufLimits::kMaxTensors) {
      return corrupt("tensor count {} exceeds the limit of {}", tensor_count_, GgufLimits::kMaxTensors);
    }
    if (kv_count_ > GgufLimits::kMaxKvs) {
      return corrupt("metadata count {} exceeds the limit of {}", kv_count_, GgufLimits::kMaxKvs);
    }
    // Both counts are bounded above, so this cannot overflow.
    const uint64_t need = tensor_count_ * kMinTensorInfoBytes + kv_count_ * kMinKvBytes;
    if (need > r_.remaining()) {
      return corrupt(
          "header claims {} tensors and {} metadata entries, which cannot fit in the {} bytes left",
          tensor_count_, kv_count_, r_.remaining());
    }
    return Status::ok();
  }

  Status parse_kvs() {
    f_.kvs_.reserve(kv_count_);  // bounded by the bytes left (parse_header)
    for (uint64_t i = 0; i < kv_count_; ++i) {
      GgufKv kv;
      HEARTH_RETURN_IF_ERROR(read_name(&kv.key, fmt::format("metadata key #{}", i)));
      uint32_t type = 0;
      HEARTH_RETURN_IF_ERROR(read(&type, fmt::format("the type of metadata key '{}'", kv.key)));
      HEARTH_RETURN_IF_ERROR(parse_value(type, 0, kv.key, &kv.value));
      f_.kvs_.push_back(kv);
    }
    f_.kv_sorted_.resize(f_.kvs_.size());
    std::iota(f_.kv_sorted_.begin(), f_.kv_sorted_.end(), 0u);
    std::stable_sort(f_.kv_sorted_.begin(), f_.kv_sorted_.end(),
                     [&](uint32_t a, uint32_t b) { return f_.kvs_[a].key < f_.kvs_[b].key; });
    for (size_t i = 1; i < f_.kv_sorted_.size(); ++i) {
      if (f_.kvs_[f_.kv_sorted_[i - 1]].key == f_.kvs_[f_.kv_sorted_[i]].key) {
        return corrupt("duplicate metadata key '{}'", f_.kvs_[f_.kv_sorted_[i]].key);
      }
    }
    return Status::ok();
  }

  static bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

  Status parse_value(uint32_t type_id, uint32_t depth, std::string_view key, GgufValue* out) {
    if (!valid_type(type_id)) return corrupt("metadata key '{}' has unknown value type {}", key, type_id);
    const auto type = static_cast<GgufType>(type_id);
    out->type_ = type;
    out->file_ = &f_;
    if (type == GgufType::kString) {
      std::string_view s;
      HEARTH_RETURN_IF_ERROR(read_string(&s, fmt::format("metadata key '{}'", key)));
      out->raw_ = {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
      return Status::ok();
    }
    if (type == GgufType::kArray) return parse_array(depth + 1, key, out);
    const uint64_t size = gguf_scalar_size(type);
    std::string_view bytes;
    if (!r_.read_bytes(size, &bytes)) return truncated(fmt::format("the value of metadata key '{}'", key));
    out->raw_ = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
    if (type == GgufType::kBool && static_cast<uint8_t>(bytes[0]) > 1) {
      return corrupt("metadata key '{}': bool value {} is not 0 or 1", key, static_cast<uint8_t>(bytes[0]));
    }
    return Status::ok();
  }

  Status parse_array(uint32_t depth, std::string_view key, GgufValue* out) {
    if (depth > GgufLimits::kMaxArrayDepth) {
      return corrupt("metadata key '{}': arrays nested deeper than {} levels", key,
                     GgufLimits::kMaxArrayDepth);
    }
    uint32_t elem_id = 0;
    uint64_t count = 0;
    HEARTH_RETURN_IF_ERROR(read(&elem_id, fmt::format("the element type of metadata key '{}'", key)));
    HEARTH_RETURN_IF_ERROR(read(&count, fmt::format("the element count of metadata key '{}'", key)));
    if (!valid_type(elem_id)) {
      return corrupt("metadata key '{}' is an array of unknown value type {}", key, elem_id);
    }
    const auto elem = static_cast<GgufType>(elem_id);
    const uint64_t min_elem = elem == GgufType::kString  ? kMinStringBytes
                              : elem == GgufType::kArray ? kMinArrayBytes
                                                         : gguf_scalar_size(elem);
    auto need = checked_mul(count, min_elem);
    if (!need || *need > r_.remaining()) {
      return corrupt("metadata key '{}' claims {} elements of type {}, which cannot fit in the {} bytes left",
                     key, count, gguf_type_name(elem), r_.remaining());
    }
    out->elem_type_ = elem;
    out->count_ = count;
    const uint64_t elems_start = r_.offset();
    if (elem == GgufType::kString) {
      out->first_ = f_.string_pool_.size();
      for (uint64_t i = 0; i < count; ++i) {
        std::string_view s;
        HEARTH_RETURN_IF_ERROR(read_string(&s, fmt::format("metadata key '{}' element {}", key, i)));
        f_.string_pool_.push_back(s);
      }
    } else if (elem == GgufType::kArray) {
      // Inner arrays add their own elements to the pools, so collect ours first and append them together.
      std::vector<GgufValue> items;
      items.reserve(count);  // bounded: each takes >= kMinArrayBytes of the bytes left
      for (uint64_t i = 0; i < count; ++i) {
        GgufValue item;
        HEARTH_RETURN_IF_ERROR(parse_value(static_cast<uint32_t>(GgufType::kArray), depth, key, &item));
        items.push_back(item);
      }
      out->first_ = f_.value_pool_.size();
      f_.value_pool_.insert(f_.value_pool_.end(), items.begin(), items.end());
    } else {
      std::string_view bytes;
      r_.read_bytes(*need, &bytes);  // checked above
      out->raw_ = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
      if (elem == GgufType::kBool) {
        for (uint64_t i = 0; i < count; ++i) {
          if (static_cast<uint8_t>(bytes[i]) > 1) {
            return corrupt("metadata key '{}': bool element {} is {}, not 0 or 1", key, i,
                           static_cast<uint8_t>(bytes[i]));
          }
        }
      }
      return Status::ok();
    }
    out->raw_ = f_.bytes_.subspan(elems_start, r_.offset() - elems_start);
    return Status::ok();
  }

  Status parse_alignment() {
    const GgufValue* v = f_.find("general.alignment");
    if (v == nullptr) return Status::ok();
    if (v->type() != GgufType::kU32) {
      return corrupt("general.alignment must be a u32, found {}", gguf_type_name(v->type()));
    }
    const uint64_t a = *v->as_u64();
    if (!is_power_of_two(a) || a > GgufLimits::kMaxAlignment) {
      return corrupt("general.alignment {} is not a power of two between 1 and {}", a,
                     GgufLimits::kMaxAlignment);
    }
    f_.alignment_ = a;
    return Status::ok();
  }

  Status parse_tensor_infos() {
    f_.tensors_.reserve(tensor_count_);  // bounded by the bytes left (parse_header)
    f_.ggml_types_.reserve(tensor_count_);
    offsets_.reserve(tensor_count_);
    for (uint64_t i = 0; i < tensor_count_; ++i) {
      std::string_view name;
      HEARTH_RETURN_IF_ERROR(read_name(&name, fmt::format("tensor name #{}", i)));
      const std::string what = fmt::format("tensor '{}'", name);
      uint32_t n_dims = 0;
      HEARTH_RETURN_IF_ERROR(read(&n_dims, what + " n_dims"));
      if (n_dims < 1 || n_dims > GgufLimits::kMaxDims) {
        return corrupt("{}: n_dims {} is not between 1 and {}", what, n_dims, GgufLimits::kMaxDims);
      }
      uint64_t ne[GgufLimits::kMaxDims] = {};
      for (uint32_t d = 0; d < n_dims; ++d) {
        HEARTH_RETURN_IF_ERROR(read(&ne[d], what + " dims"));
        if (ne[d] == 0 || ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return corrupt("{}: dimension {} is {}, outside 1..2^63-1", what, d, ne[d]);
        }
      }
      uint32_t ggml_type = 0;
      uint64_t offset = 0;
      HEARTH_RETURN_IF_ERROR(read(&ggml_type, what + " type"));
      HEARTH_RETURN_IF_ERROR(read(&offset, what + " offset"));
      auto dtype = dtype_from_ggml_type(ggml_type);
      if (!dtype) {
        return unsupported("unsupported ggml type {} ({}) for tensor '{}'", ggml_type,
                           ggml_type_name(ggml_type), name);
      }
      const DTypeInfo& info = dtype_info(*dtype);
      if (ne[0] % info.block_elems != 0) {
        return corrupt("{}: innermost dimension {} is not a multiple of the {} block size {}", what, ne[0],
                       info.name, info.block_elems);
      }
      TensorView t;
      t.name = std::string(name);
      t.dtype = *dtype;
      t.shape.assign(std::make_reverse_iterator(ne + n_dims), std::make_reverse_iterator(ne));
      auto nbytes = tensor_nbytes(*dtype, t.shape);
      if (!nbytes) {
        return corrupt("{}: size of shape [{}] x {} overflows 64 bits", what, fmt::join(t.shape, ", "),
                       info.name);
      }
      t.file = f_.path_;
      f_.tensors_.push_back(std::move(t));
      f_.ggml_types_.push_back(ggml_type);
      offsets_.push_back({offset, *nbytes});
    }
    return Status::ok();
  }

  Status place_tensors() {
    const uint64_t header_end = r_.offset();
    const uint64_t file_size = f_.bytes_.size();
    f_.data_offset_ = align_up(header_end, f_.alignment_);  // header_end <= file size: no overflow
    if (tensor_count_ > 0 && f_.data_offset_ > file_size) {
      return corrupt("the data section starts at byte {}, past the end of the file ({} bytes)",
                     f_.data_offset_, file_size);
    }
    const uint64_t data_size = f_.data_offset_ <= file_size ? file_size - f_.data_offset_ : 0;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      TensorView& t = f_.tensors_[i];
      const auto [offset, nbytes] = offsets_[i];
      if (offset % f_.alignment_ != 0) {
        return corrupt("tensor '{}': data offset {} is not a multiple of the alignment {}", t.name, offset,
                       f_.alignment_);
      }
      auto end = checked_add(offset, nbytes);
      if (!end || *end > data_size) {
        return corrupt("tensor '{}': data [{}, +{}) runs past the end of the data section ({} bytes)", t.name,
                       offset, nbytes, data_size);
      }
      t.file_offset = f_.data_offset_ + offset;
      t.data = f_.bytes_.subspan(t.file_offset, nbytes);
    }
    // No two tensors share bytes.
    std::vector<uint32_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return offsets_[a].offset != offsets_[b].offset ? offsets_[a].offset < offsets_[b].offset : a < b;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      const auto& prev = offsets_[order[k - 1]];
      if (prev.offset + prev.nbytes > offsets_[order[k]].offset) {
        return corrupt("tensors '{}' and '{}' overlap in the data section", f_.tensors_[order[k - 1]].name,
                       f_.tensors_[order[k]].name);
      }
    }
    // Names are unique.
    f_.tensor_sorted_.resize(f_.tensors_.size());
    std::iota(f_.tensor_sorted_.begin(), f_.tensor_sorted_.end(), 0u);
    std::sort(f_.tensor_sorted_.begin(), f_.tensor_sorted_.end(),
              [&](uint32_t a, uint32_t b) { return f_.tensors_[a].name < f_.tensors_[b].name; });
    for (size_t k = 1; k < f_.tensor_sorted_.size(); ++k) {
      if (f_.tensors_[f_.tensor_sorted_[k - 1]].name == f_.tensors_[f_.tensor_sorted_[k]].name) {
        return corrupt("duplicate tensor name '{}'", f_.tensors_[f_.tensor_sorted_[k]].name);
      }
    }
    return Status::ok();
  }

  struct Placement {
    uint64_t offset;
    uint64_t nbytes;
  };

  GgufFile& f_;
  ByteReader r_;
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  std::vector<Placement> offsets_;
};

Result<std::shared_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  auto file = std::shared_ptr<GgufFile>(new GgufFile());
  file->path_ = path;
  file->bytes_ = mapped->bytes();
  file->mapped_ = std::move(mapped);
  return parse(std::move(file));
}

Result<std::shared_ptr<GgufFile>> GgufFile::open_memory(std::span<const uint8_t> bytes, std::string name) {
  auto file = std::shared_ptr<GgufFile>(new GgufFile());
  file->path_ = std::move(name);
  file->owned_.assign(bytes.begin(), bytes.end());
  file->bytes_ = file->owned_;
  return parse(std::move(file));
}

Result<std::shared_ptr<GgufFile>> GgufFile::parse(std::shared_ptr<GgufFile> file) {
  try {
    GgufParser parser(*file);
    HEARTH_RETURN_IF_ERROR(parser.parse());
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while parsing the GGUF header",
                      file->path_);
  }
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = std::lower_bound(kv_sorted_.begin(), kv_sorted_.end(), key,
                             [&](uint32_t i, std::string_view k) { return kvs_[i].key < k; });
  if (it == kv_sorted_.end() || kvs_[*it].key != key) return nullptr;
  return &kvs_[*it].value;
}

const TensorView* GgufFile::find_tensor(std::string_view name) const {
  auto it = std::lower_bound(tensor_sorted_.begin(), tensor_sorted_.end(), name,
                             [&](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
  if (it == tensor_sorted_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

namespace {
std::string describe_type(const GgufValue& v) {
  if (!v.is_array()) return std::string(gguf_type_name(v.type()));
  return fmt::format("an array of {}", gguf_type_name(v.element_type()));
}
}  // namespace

Result<const GgufValue*> GgufFile::find_required(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: metadata key '{}' not found", path_, key);
  return v;
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (auto s = v->as_string()) return *s;
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected a string", path_, key,
                    describe_type(*v));
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (auto x = v->as_u64()) return *x;
  if (auto x = v->as_i64()) {
    return make_error(ErrorCode::kOutOfRange, "{}: metadata key '{}' is negative ({})", path_, key, *x);
  }
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected an integer", path_, key,
                    describe_type(*v));
}

Result<int64_t> GgufFile::get_i64(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (auto x = v->as_i64()) return *x;
  if (v->as_u64()) {
    return make_error(ErrorCode::kOutOfRange, "{}: metadata key '{}' does not fit in int64", path_, key);
  }
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected an integer", path_, key,
                    describe_type(*v));
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (auto x = v->as_f64()) return static_cast<float>(*x);
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected a float", path_, key,
                    describe_type(*v));
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (auto x = v->as_bool()) return *x;
  return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected a bool", path_, key,
                    describe_type(*v));
}

Result<GgufValue> GgufFile::get_array(std::string_view key, std::optional<GgufType> element_type) const {
  HEARTH_ASSIGN_OR_RETURN(const GgufValue* v, find_required(key));
  if (!v->is_array() || (element_type && v->element_type() != *element_type)) {
    return make_error(ErrorCode::kCorrupt, "{}: metadata key '{}' is {}, expected an array{}{}", path_, key,
                      describe_type(*v), element_type ? " of " : "",
                      element_type ? gguf_type_name(*element_type) : "");
  }
  return *v;
}

}  // namespace hearth
