#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <optional>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/checked_math.h"
#include "core/json_guard.h"
#include "core/utf8.h"

namespace hearth {
namespace {

using Limits = SafetensorsLimits;

std::string format_shape(const std::vector<uint64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// A tensor's [begin, end) in the data buffer, as the header gives it.
struct Range {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool operator==(const Range&) const = default;
  bool operator<(const Range& o) const { return begin != o.begin ? begin < o.begin : end < o.end; }
};

// SAX consumer of the header JSON: checks the schema event by event, so nothing but the tensor
// table is ever built (no DOM of a 100 MiB header) and duplicate keys inside an entry or in
// __metadata__, which a DOM would silently collapse, are caught where they occur. Duplicate tensor
// names are found afterwards, by sorting (cheaper than a set of every name).
class HeaderSax final : public nlohmann::json::json_sax_t {
 public:
  HeaderSax(const std::string& path, std::vector<TensorView>* views, std::vector<Range>* ranges,
            std::map<std::string, std::string>* metadata)
      : path_(path), views_(views), ranges_(ranges), metadata_(metadata) {}

  const Status& error() const { return error_; }

  bool null() override { return unexpected("null"); }
  bool boolean(bool /*val*/) override { return unexpected("a boolean"); }
  bool number_integer(number_integer_t val) override {
    if (val < 0) return unexpected(fmt::format("the negative number {}", val));
    return integer(static_cast<uint64_t>(val));
  }
  bool number_unsigned(number_unsigned_t val) override { return integer(val); }
  bool number_float(number_float_t /*val*/, const string_t& s) override {
    return unexpected(fmt::format("the non-integer number {}", s));
  }
  bool string(string_t& val) override {
    if (state_ == State::kDtype) {
      auto t = dtype_from_safetensors(val);
      if (!t) return fail_tensor(fmt::format("unknown dtype '{}'", val));
      views_->back().dtype = *t;
      state_ = State::kEntry;
      return true;
    }
    if (state_ == State::kMetaValue) {
      (*metadata_)[meta_key_] = std::move(val);
      state_ = State::kMeta;
      return true;
    }
    return unexpected("a string");
  }
  bool binary(binary_t& /*val*/) override { return unexpected("binary data"); }

  bool start_object(std::size_t /*elements*/) override {
    switch (state_) {
      case State::kStart: state_ = State::kTop; return true;
      case State::kMetaStart: state_ = State::kMeta; return true;
      case State::kEntryStart: state_ = State::kEntry; return true;
      default: return unexpected("an object");
    }
  }
  bool key(string_t& val) override {
    if (state_ == State::kTop) {
      if (val == "__metadata__") {
        if (seen_metadata_) return fail("duplicate key '__metadata__'");
        seen_metadata_ = true;
        state_ = State::kMetaStart;
        return true;
      }
      std::string problem = safetensors_name_problem(val);
      if (!problem.empty()) return fail(problem);
      TensorView& v = views_->emplace_back();
      v.name = std::move(val);
      v.file = path_;
      ranges_->emplace_back();
      entry_ = Entry{};
      state_ = State::kEntryStart;
      return true;
    }
    if (state_ == State::kMeta) {
      if (metadata_->count(val) != 0) return fail(fmt::format("__metadata__: duplicate key '{}'", val));
      meta_key_ = std::move(val);
      state_ = State::kMetaValue;
      return true;
    }
    if (state_ == State::kEntry) {
      bool* seen = nullptr;
      if (val == "dtype") {
        seen = &entry_.seen_dtype;
        state_ = State::kDtype;
      } else if (val == "shape") {
        seen = &entry_.seen_shape;
        state_ = State::kShapeStart;
      } else if (val == "data_offsets") {
        seen = &entry_.seen_offsets;
        state_ = State::kOffsetsStart;
      } else {
        return fail_tensor(fmt::format("unknown key '{}' (allowed: dtype, shape, data_offsets)", val));
      }
      if (*seen) return fail_tensor(fmt::format("duplicate key '{}'", val));
      *seen = true;
      return true;
    }
    return unexpected("a key");
  }
  bool end_object() override {
    switch (state_) {
      case State::kTop: state_ = State::kDone; return true;
      case State::kMeta: state_ = State::kTop; return true;
      case State::kEntry: {
        const char* missing = !entry_.seen_dtype     ? "dtype"
                              : !entry_.seen_shape   ? "shape"
                              : !entry_.seen_offsets ? "data_offsets"
                                                     : nullptr;
        if (missing != nullptr) return fail_tensor(fmt::format("missing key '{}'", missing));
        state_ = State::kTop;
        return true;
      }
      default: return unexpected("the end of an object");
    }
  }
  bool start_array(std::size_t /*elements*/) override {
    switch (state_) {
      case State::kShapeStart: state_ = State::kShape; return true;
      case State::kOffsetsStart: state_ = State::kOffsets; return true;
      default: return unexpected("an array");
    }
  }
  bool end_array() override {
    if (state_ == State::kShape) {
      state_ = State::kEntry;
      return true;
    }
    if (state_ == State::kOffsets) {
      if (entry_.offsets_seen != 2) {
        return fail_tensor(
            fmt::format("data_offsets has {} elements, expected 2 ([begin, end])", entry_.offsets_seen));
      }
      state_ = State::kEntry;
      return true;
    }
    return unexpected("the end of an array");
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    if (error_.is_ok()) {
      error_ = make_error(ErrorCode::kCorrupt, "{}: header is not valid JSON: {}", path_, ex.what());
    }
    return false;
  }

 private:
  enum class State {
    kStart,         // before the top-level value
    kTop,           // in the top-level object, expecting a key
    kMetaStart,     // after "__metadata__"
    kMeta,          // in __metadata__, expecting a key
    kMetaValue,     // in __metadata__, expecting a string
    kEntryStart,    // after a tensor name
    kEntry,         // in a tensor entry, expecting a key
    kDtype,         // expecting the dtype string
    kShapeStart,    // expecting the shape array
    kShape,         // in the shape array
    kOffsetsStart,  // expecting the data_offsets array
    kOffsets,       // in the data_offsets array
    kDone,
  };
  // What the entry being parsed (views_->back()) has seen so far.
  struct Entry {
    bool seen_dtype = false, seen_shape = false, seen_offsets = false;
    size_t offsets_seen = 0;
  };

  bool integer(uint64_t v) {
    if (state_ == State::kShape) {
      std::vector<uint64_t>& shape = views_->back().shape;
      if (shape.size() == Limits::kMaxDims) {
        return fail_tensor(fmt::format("shape has more than {} dims", Limits::kMaxDims));
      }
      shape.push_back(v);
      return true;
    }
    if (state_ == State::kOffsets) {
      if (entry_.offsets_seen == 2) {
        return fail_tensor("data_offsets has more than 2 elements ([begin, end])");
      }
      Range& r = ranges_->back();
      (entry_.offsets_seen++ == 0 ? r.begin : r.end) = v;
      return true;
    }
    return unexpected(fmt::format("the number {}", v));
  }

  // Names what was expected where `got` appeared.
  bool unexpected(const std::string& got) {
    switch (state_) {
      case State::kStart: return fail(fmt::format("header is not a JSON object (found {})", got));
      case State::kMetaStart: return fail(fmt::format("__metadata__ must be an object (found {})", got));
      case State::kMetaValue:
        return fail(fmt::format("__metadata__ value of '{}' must be a string (found {})", meta_key_, got));
      case State::kEntryStart: return fail_tensor(fmt::format("entry must be an object (found {})", got));
      case State::kDtype: return fail_tensor(fmt::format("dtype must be a string (found {})", got));
      case State::kShapeStart: return fail_tensor(fmt::format("shape must be an array (found {})", got));
      case State::kShape:
        return fail_tensor(fmt::format("shape dims must be non-negative integers (found {})", got));
      case State::kOffsetsStart:
        return fail_tensor(fmt::format("data_offsets must be an array (found {})", got));
      case State::kOffsets:
        return fail_tensor(fmt::format("data_offsets must hold non-negative integers (found {})", got));
      default: return fail(fmt::format("unexpected {} in the header", got));
    }
  }
  bool fail(const std::string& message) {
    if (error_.is_ok()) error_ = make_error(ErrorCode::kCorrupt, "{}: {}", path_, message);
    return false;
  }
  bool fail_tensor(const std::string& message) {
    return fail(fmt::format("tensor '{}': {}", views_->back().name, message));
  }

  const std::string& path_;
  std::vector<TensorView>* views_;
  std::vector<Range>* ranges_;
  std::map<std::string, std::string>* metadata_;
  State state_ = State::kStart;
  Entry entry_;
  std::string meta_key_;
  bool seen_metadata_ = false;
  Status error_;
};

// Per-tensor checks that need the whole entry: sizes (overflow-checked) against data_offsets.
Status check_entry(const std::string& path, const TensorView& t, Range r, uint64_t data_size) {
  auto numel = checked_product(t.shape);
  if (!numel) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor '{}': shape {} has more elements than fit in 64 bits",
                      path, t.name, format_shape(t.shape));
  }
  auto nbytes = tensor_nbytes(t.dtype, t.shape);
  if (!nbytes) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: tensor '{}': shape {} x {} bytes per element overflows 64 bits", path, t.name,
                      format_shape(t.shape), dtype_info(t.dtype).block_bytes);
  }
  if (r.begin > r.end) {
    return make_error(ErrorCode::kCorrupt, "{}: tensor '{}': data_offsets [{}, {}) end before they begin",
                      path, t.name, r.begin, r.end);
  }
  if (r.end - r.begin != *nbytes) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: tensor '{}': data_offsets [{}, {}) hold {} bytes but {} {} needs {}", path, t.name,
                      r.begin, r.end, r.end - r.begin, dtype_name(t.dtype), format_shape(t.shape), *nbytes);
  }
  if (r.end > data_size) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: tensor '{}': data_offsets [{}, {}) run past the end of the {} byte data buffer "
                      "(file truncated?)",
                      path, t.name, r.begin, r.end, data_size);
  }
  return Status::ok();
}

// The ranges, visited in `order` (sorted by range), must tile [0, data_size) exactly: no overlap,
// no hole, nothing left over.
Status check_coverage(const std::string& path, const std::vector<TensorView>& views,
                      const std::vector<Range>& ranges, const std::vector<uint32_t>& order,
                      uint64_t data_size) {
  uint64_t expected = 0;
  const uint32_t kNone = ~0u;
  uint32_t prev = kNone;
  for (uint32_t i : order) {
    const Range r = ranges[i];
    if (r.begin < expected) {
      return make_error(
          ErrorCode::kCorrupt, "{}: tensor '{}': data_offsets [{}, {}) overlap tensor '{}' [{}, {})", path,
          views[prev].name, ranges[prev].begin, ranges[prev].end, views[i].name, r.begin, r.end);
    }
    if (r.begin > expected) {
      if (prev == kNone) {
        return make_error(ErrorCode::kCorrupt,
                          "{}: tensor '{}': data_offsets [{}, {}) leave data bytes [0, {}) unused (a hole)",
                          path, views[i].name, r.begin, r.end, r.begin);
      }
      return make_error(
          ErrorCode::kCorrupt,
          "{}: tensor '{}': data_offsets [{}, {}) leave a hole of {} bytes after tensor '{}' [{}, {})", path,
          views[i].name, r.begin, r.end, r.begin - expected, views[prev].name, ranges[prev].begin,
          ranges[prev].end);
    }
    expected = r.end;
    prev = i;
  }
  if (expected != data_size) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: data buffer is {} bytes but the tensors cover only {} ({} trailing bytes)", path,
                      data_size, expected, data_size - expected);
  }
  return Status::ok();
}

std::vector<uint32_t> iota(size_t n) {
  std::vector<uint32_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint32_t>(i);
  return v;
}

}  // namespace

std::string safetensors_name_problem(std::string_view name) {
  if (name.empty()) return "tensor name is empty";
  if (name.size() > SafetensorsLimits::kMaxNameBytes) {
    return fmt::format("tensor name of {} bytes exceeds the {} byte limit", name.size(),
                       SafetensorsLimits::kMaxNameBytes);
  }
  if (!utf8::is_valid(name)) {
    return fmt::format("tensor name is not valid UTF-8 (byte {})", utf8::first_invalid(name));
  }
  if (name.find('\0') != std::string_view::npos) return "tensor name contains a NUL character";
  return {};
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->file_ = std::move(mapped);
  HEARTH_RETURN_IF_ERROR(file->parse(file->file_->bytes()));
  return file;
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open_memory(std::string name,
                                                                      std::vector<uint8_t> bytes) {
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = std::move(name);
  file->owned_ = std::move(bytes);
  HEARTH_RETURN_IF_ERROR(file->parse(file->owned_));
  return file;
}

Status SafetensorsFile::parse(std::span<const uint8_t> bytes) {
  const std::string& path = path_;
  if (bytes.size() < 8) {
    return make_error(ErrorCode::kCorrupt, "{}: file is {} bytes, too short for the 8-byte header length",
                      path, bytes.size());
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
  const uint64_t rest = bytes.size() - 8;
  if (n > Limits::kMaxHeaderBytes) {
    return make_error(ErrorCode::kOutOfRange, "{}: header length {} exceeds the {} byte limit", path, n,
                      Limits::kMaxHeaderBytes);
  }
  if (n > rest) {
    return make_error(ErrorCode::kCorrupt,
                      "{}: header length {} runs past the end of the file ({} bytes after it)", path, n,
                      rest);
  }
  if (n < 2) {
    return make_error(ErrorCode::kCorrupt, "{}: header length {} is too small for a JSON object", path, n);
  }

  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<size_t>(n));
  if (size_t bad = utf8::first_invalid(header); bad != std::string_view::npos) {
    return make_error(ErrorCode::kCorrupt, "{}: header is not valid UTF-8 (byte {} of the header)", path,
                      bad);
  }
  // JSON never holds a raw NUL, and nlohmann would take one as the end of input, ignoring the rest.
  if (size_t nul = header.find('\0'); nul != std::string_view::npos) {
    return make_error(ErrorCode::kCorrupt, "{}: header holds a NUL byte (byte {} of the header)", path, nul);
  }
  HEARTH_RETURN_IF_ERROR(check_json_limits(header, JsonLimits{Limits::kMaxHeaderBytes, Limits::kMaxJsonDepth},
                                           path + " header"));

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = bytes.size() - data_start;
  std::vector<TensorView> views;
  std::vector<Range> ranges;
  try {
    HeaderSax sax(path, &views, &ranges, &metadata_);
    const bool ok = nlohmann::json::sax_parse(header.begin(), header.end(), &sax);
    if (!sax.error().is_ok()) return sax.error();
    if (!ok) return make_error(ErrorCode::kCorrupt, "{}: header is not valid JSON", path);

    // Each entry holds at least a few dozen header bytes, so the count fits in 32 bits.
    std::vector<uint32_t> by_name = iota(views.size());
    std::sort(by_name.begin(), by_name.end(),
              [&](uint32_t a, uint32_t b) { return views[a].name < views[b].name; });
    for (size_t i = 1; i < by_name.size(); ++i) {
      if (views[by_name[i]].name == views[by_name[i - 1]].name) {
        return make_error(ErrorCode::kCorrupt, "{}: duplicate tensor name '{}'", path,
                          views[by_name[i]].name);
      }
    }
    for (size_t i = 0; i < views.size(); ++i) {
      HEARTH_RETURN_IF_ERROR(check_entry(path, views[i], ranges[i], data_size));
    }
    std::vector<uint32_t> by_offset = iota(views.size());
    std::sort(by_offset.begin(), by_offset.end(), [&](uint32_t a, uint32_t b) {
      return ranges[a] != ranges[b] ? ranges[a] < ranges[b] : views[a].name < views[b].name;
    });
    HEARTH_RETURN_IF_ERROR(check_coverage(path, views, ranges, by_offset, data_size));

    // Permute into data-offset order in place (no second copy of the table); by_name_ then
    // indexes that order.
    std::vector<uint32_t> rank(views.size());
    for (uint32_t k = 0; k < by_offset.size(); ++k) rank[by_offset[k]] = k;
    std::vector<uint32_t> target = rank;  // where the entry now at i must go
    for (uint32_t i = 0; i < target.size(); ++i) {
      while (target[i] != i) {
        const uint32_t j = target[i];
        std::swap(views[i], views[j]);
        std::swap(ranges[i], ranges[j]);
        std::swap(target[i], target[j]);
      }
    }
    for (size_t i = 0; i < views.size(); ++i) {
      TensorView& v = views[i];
      v.file_offset = data_start + ranges[i].begin;
      v.data = bytes.subspan(static_cast<size_t>(v.file_offset),
                             static_cast<size_t>(ranges[i].end - ranges[i].begin));
    }
    tensors_ = std::move(views);
    for (uint32_t& i : by_name) i = rank[i];
    by_name_ = std::move(by_name);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while parsing the header", path);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorrupt, "{}: header is not valid JSON: {}", path, e.what());
  }
  return Status::ok();
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [this](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
  if (it == by_name_.end() || tensors_[*it].name != name) return nullptr;
  return &tensors_[*it];
}

}  // namespace hearth
