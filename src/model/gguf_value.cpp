// GgufValue accessors, type names and the ggml type table.
#include <array>
#include <cstring>
#include <limits>

#include "model/gguf.h"

namespace hearth {
namespace {

struct GgmlTypeEntry {
  uint32_t id;
  std::string_view name;
  std::optional<DType> dtype;
};

// enum ggml_type (ggml.h). Ids 4, 5, 31-33 and 36-38 were removed from ggml and are not listed.
constexpr std::array<GgmlTypeEntry, 36> kGgmlTypes = {{
    {0, "F32", DType::kF32},
    {1, "F16", DType::kF16},
    {2, "Q4_0", DType::kQ4_0},
    {3, "Q4_1", DType::kQ4_1},
    {6, "Q5_0", DType::kQ5_0},
    {7, "Q5_1", DType::kQ5_1},
    {8, "Q8_0", DType::kQ8_0},
    {9, "Q8_1", std::nullopt},
    {10, "Q2_K", DType::kQ2_K},
    {11, "Q3_K", DType::kQ3_K},
    {12, "Q4_K", DType::kQ4_K},
    {13, "Q5_K", DType::kQ5_K},
    {14, "Q6_K", DType::kQ6_K},
    {15, "Q8_K", std::nullopt},
    {16, "IQ2_XXS", std::nullopt},
    {17, "IQ2_XS", std::nullopt},
    {18, "IQ3_XXS", std::nullopt},
    {19, "IQ1_S", std::nullopt},
    {20, "IQ4_NL", std::nullopt},
    {21, "IQ3_S", std::nullopt},
    {22, "IQ2_S", std::nullopt},
    {23, "IQ4_XS", std::nullopt},
    {24, "I8", DType::kI8},
    {25, "I16", DType::kI16},
    {26, "I32", DType::kI32},
    {27, "I64", DType::kI64},
    {28, "F64", DType::kF64},
    {29, "IQ1_M", std::nullopt},
    {30, "BF16", DType::kBF16},
    {34, "TQ1_0", std::nullopt},
    {35, "TQ2_0", std::nullopt},
    {39, "MXFP4", std::nullopt},
    {40, "NVFP4", std::nullopt},
    {41, "Q1_0", std::nullopt},
    {4, "Q4_2 (removed)", std::nullopt},
    {5, "Q4_3 (removed)", std::nullopt},
}};

uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool: return 1;
    case GgufType::kU16:
    case GgufType::kI16: return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32: return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64: return 8;
    case GgufType::kString:
    case GgufType::kArray: return 0;
  }
  return 0;
}

template <typename T>
std::optional<T> load(std::span<const uint8_t> raw) {
  if (raw.size() != sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, raw.data(), sizeof(T));
  return v;
}

void append_escaped(std::string& out, std::string_view s, size_t max_chars) {
  out += '"';
  size_t n = 0;
  for (char c : s) {
    if (n++ == max_chars) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

uint64_t gguf_scalar_size(GgufType t) {
  return scalar_size(t);
}

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "unknown";
}

std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type) {
  for (const auto& e : kGgmlTypes) {
    if (e.id == ggml_type) return e.dtype;
  }
  return std::nullopt;
}

std::optional<uint32_t> ggml_type_from_dtype(DType t) {
  for (const auto& e : kGgmlTypes) {
    if (e.dtype == t) return e.id;
  }
  return std::nullopt;
}

std::string_view ggml_type_name(uint32_t ggml_type) {
  for (const auto& e : kGgmlTypes) {
    if (e.id == ggml_type) return e.name;
  }
  return "unknown";
}

std::optional<uint64_t> GgufValue::as_u64() const {
  switch (type_) {
    case GgufType::kU8: return load<uint8_t>(raw_);
    case GgufType::kU16: return load<uint16_t>(raw_);
    case GgufType::kU32: return load<uint32_t>(raw_);
    case GgufType::kU64: return load<uint64_t>(raw_);
    case GgufType::kI8:
    case GgufType::kI16:
    case GgufType::kI32:
    case GgufType::kI64: {
      auto v = as_i64();
      if (!v || *v < 0) return std::nullopt;
      return static_cast<uint64_t>(*v);
    }
    default: return std::nullopt;
  }
}

std::optional<int64_t> GgufValue::as_i64() const {
  switch (type_) {
    case GgufType::kI8: return load<int8_t>(raw_);
    case GgufType::kI16: return load<int16_t>(raw_);
    case GgufType::kI32: return load<int32_t>(raw_);
    case GgufType::kI64: return load<int64_t>(raw_);
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
    case GgufType::kU64: {
      auto v = as_u64();
      if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(*v);
    }
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::as_f64() const {
  if (type_ == GgufType::kF32) return load<float>(raw_);
  if (type_ == GgufType::kF64) return load<double>(raw_);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufType::kBool) return std::nullopt;
  auto v = load<uint8_t>(raw_);
  if (!v) return std::nullopt;
  return *v != 0;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (type_ != GgufType::kString) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(raw_.data()), raw_.size());
}

GgufValue GgufValue::element(uint64_t i) const {
  GgufValue v;
  if (!is_array() || i >= count_) return v;  // programmer error; an empty u8 reads as nullopt
  switch (elem_type_) {
    case GgufType::kString: {
      std::string_view s = file_->string_pool_[first_ + i];
      v.type_ = GgufType::kString;
      v.raw_ = {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
      v.file_ = file_;
      return v;
    }
    case GgufType::kArray: return file_->value_pool_[first_ + i];
    default: {
      const uint64_t size = scalar_size(elem_type_);
      v.type_ = elem_type_;
      v.raw_ = raw_.subspan(i * size, size);
      v.file_ = file_;
      return v;
    }
  }
}

std::span<const std::string_view> GgufValue::strings() const {
  if (!is_array() || elem_type_ != GgufType::kString || count_ == 0) return {};
  return std::span<const std::string_view>(file_->string_pool_).subspan(first_, count_);
}

std::string GgufValue::describe(size_t max_elems, size_t max_chars) const {
  std::string out;
  switch (type_) {
    case GgufType::kString: append_escaped(out, *as_string(), max_chars); break;
    case GgufType::kBool: out = as_bool().value_or(false) ? "true" : "false"; break;
    case GgufType::kF32:
    case GgufType::kF64: out = fmt::format("{}", as_f64().value_or(0.0)); break;
    case GgufType::kI8:
    case GgufType::kI16:
    case GgufType::kI32:
    case GgufType::kI64: out = fmt::format("{}", as_i64().value_or(0)); break;
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
    case GgufType::kU64: out = fmt::format("{}", as_u64().value_or(0)); break;
    case GgufType::kArray: {
      out = fmt::format("array<{}>[{}] [", gguf_type_name(elem_type_), count_);
      for (uint64_t i = 0; i < count_ && i < max_elems; ++i) {
        if (i > 0) out += ", ";
        out += element(i).describe(max_elems, max_chars);
      }
      if (count_ > max_elems) out += ", ...";
      out += ']';
      break;
    }
  }
  return out;
}

}  // namespace hearth
