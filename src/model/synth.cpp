#include "model/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "core/mapped_file.h"
#include "model/arch_tensors.h"
#include "model/fp8_block.h"
#include "model/safetensors.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr float kWeightStd = 0.02f;
constexpr uint64_t kChunkRows = 128;  // one fp8 block row; the unit of seeding and of threading

// ---- random numbers ----------------------------------------------------------------------------

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// xoshiro256** (Blackman & Vigna), seeded through splitmix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in (-1, 1), 53 bits.
  double symmetric() { return static_cast<double>(static_cast<int64_t>(next()) >> 11) * 0x1.0p-52; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Standard normals by Marsaglia's polar method (no trigonometry; ~1.27 draws per pair).
void fill_normal(Xoshiro256& rng, float stddev, float* out, uint64_t n) {
  uint64_t i = 0;
  while (i < n) {
    double u, v, s;
    do {
      u = rng.symmetric();
      v = rng.symmetric();
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    out[i++] = static_cast<float>(u * f) * stddev;
    if (i < n) out[i++] = static_cast<float>(v * f) * stddev;
  }
}

uint64_t chunk_seed(uint64_t seed, std::string_view tensor, uint64_t chunk) {
  uint64_t state = seed ^ fnv1a64(tensor);
  splitmix64(state);
  state ^= chunk * 0xD1B54A32D192ED03ull;
  return splitmix64(state);
}

// ---- one tensor ---------------------------------------------------------------------------------

enum class Values { kNormal, kOnes, kScales };

struct TensorPlan {
  std::string name;
  std::vector<uint64_t> shape;
  DType dtype;
  Values values;
  uint64_t nbytes;
  std::string scale_name;  // fp8 weights: the scale_inv tensor written right after
};

// State shared by the fills of one synth run.
struct RunState {
  const SynthOptions* options;
  QuantizationSpec quant;
  unsigned threads;
  std::atomic<uint64_t> bytes_done{0};
  uint64_t bytes_total = 0;
  Clock::time_point start = Clock::now();
  Clock::time_point last_report = Clock::now();
  std::mutex scales_mu;
  std::map<std::string, std::vector<float>> scales;  // written by a weight's fill, read by its scale's

  bool reported = false;

  // `final`: the closing report, printed only when progress was shown at all (runs over a second).
  void maybe_report(bool final) {
    if (!options->progress || (final && !reported)) return;
    const auto now = Clock::now();
    if (!final && now - last_report < std::chrono::seconds(1)) return;
    last_report = now;
    reported = true;
    options->progress({bytes_done.load(), bytes_total, std::chrono::duration<double>(now - start).count()});
  }
};

// Fills rows [r0, r1) of `plan` (row-major, `cols` per row) into out; `buf` holds their floats.
Status fill_chunk(RunState& st, const TensorPlan& plan, uint64_t chunk, uint64_t rows, uint64_t cols,
                  std::vector<float>& buf, std::span<uint8_t> out, float* scales) {
  const uint64_t r0 = chunk * kChunkRows;
  const uint64_t r1 = std::min(rows, r0 + kChunkRows);
  const uint64_t n = (r1 - r0) * cols;
  buf.resize(n);
  if (plan.values == Values::kOnes) {
    std::fill(buf.begin(), buf.end(), 1.0f);
  } else {
    Xoshiro256 rng(chunk_seed(st.options->seed, plan.name, chunk));
    fill_normal(rng, kWeightStd, buf.data(), n);
  }
  const uint64_t elem0 = r0 * cols;
  switch (plan.dtype) {
    case DType::kF32: std::memcpy(out.data() + elem0 * 4, buf.data(), n * 4); break;
    case DType::kBF16:
    case DType::kF16:
      for (uint64_t i = 0; i < n; ++i) {
        const uint16_t h = plan.dtype == DType::kBF16 ? float_to_bf16(buf[i]) : float_to_f16(buf[i]);
        std::memcpy(out.data() + (elem0 + i) * 2, &h, 2);
      }
      break;
    case DType::kF8_E4M3: {
      const Fp8BlockSize block{static_cast<uint32_t>(st.quant.block_rows),
                               static_cast<uint32_t>(st.quant.block_cols)};
      if (block.rows != kChunkRows) {
        return make_error(ErrorCode::kUnsupported, "synth: fp8 block rows must be {} (got {})", kChunkRows,
                          block.rows);
      }
      const uint64_t scale_cols = (cols + block.cols - 1) / block.cols;
      return quantize_fp8_block(buf.data(), r1 - r0, cols, block, out.data() + elem0,
                                scales + (r0 / block.rows) * scale_cols);
    }
    default:
      return make_error(ErrorCode::kInternal, "synth: tensor {} has unsupported dtype {}", plan.name,
                        dtype_name(plan.dtype));
  }
  return Status::ok();
}

Status fill_tensor(RunState& st, const TensorPlan& plan, std::span<uint8_t> out) {
  // A 2-D view: [shape[0], everything else] (1-D tensors are one row).
  uint64_t numel = 1;
  for (uint64_t d : plan.shape) numel *= d;
  const uint64_t rows = plan.shape.size() >= 2 ? plan.shape[0] : 1;
  const uint64_t cols = rows == 0 ? 0 : numel / rows;
  const uint64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  std::vector<float> scales;
  if (plan.dtype == DType::kF8_E4M3) {
    const auto scale_shape = fp8_scale_shape(plan.shape, st.quant);
    scales.resize(scale_shape[0] * scale_shape[1]);
  }
  std::atomic<uint64_t> next{0};
  std::mutex err_mu;
  Status first_error;
  auto work = [&](bool reporter) {
    std::vector<float> buf;
    for (uint64_t c; (c = next.fetch_add(1)) < chunks;) {
      Status s = fill_chunk(st, plan, c, rows, cols, buf, out, scales.data());
      if (!s.is_ok()) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.is_ok()) first_error = s;
        next = chunks;
        return;
      }
      const uint64_t r0 = c * kChunkRows;
      st.bytes_done += (std::min(rows, r0 + kChunkRows) - r0) * cols * dtype_info(plan.dtype).block_bytes;
      if (reporter) st.maybe_report(false);
    }
  };
  const unsigned helpers =
      static_cast<unsigned>(std::min<uint64_t>(st.threads, chunks)) - (chunks > 0 ? 1 : 0);
  std::vector<std::thread> pool;
  pool.reserve(helpers);
  for (unsigned i = 0; i < helpers; ++i) pool.emplace_back(work, false);
  work(true);
  for (auto& t : pool) t.join();
  HEARTH_RETURN_IF_ERROR(first_error);
  if (!plan.scale_name.empty()) {
    std::lock_guard<std::mutex> lock(st.scales_mu);
    st.scales[plan.scale_name] = std::move(scales);
  }
  return Status::ok();
}

Status fill_scale(RunState& st, const TensorPlan& plan, std::span<uint8_t> out) {
  std::vector<float> scales;
  {
    std::lock_guard<std::mutex> lock(st.scales_mu);
    auto it = st.scales.find(plan.name);
    if (it == st.scales.end()) {
      return make_error(ErrorCode::kInternal, "synth: {} written before its weight", plan.name);
    }
    scales = std::move(it->second);
    st.scales.erase(it);
  }
  if (scales.size() * 4 != out.size()) {
    return make_error(ErrorCode::kInternal, "synth: {} has {} scales for {} bytes", plan.name, scales.size(),
                      out.size());
  }
  std::memcpy(out.data(), scales.data(), out.size());
  st.bytes_done += out.size();
  return Status::ok();
}

// ---- the checkpoint ----------------------------------------------------------------------------

std::vector<TensorPlan> plan_tensors(const ModelSpec& spec, bool write_mtp) {
  std::vector<TensorPlan> plans;
  for (const ExpectedTensor& t : expected_tensors(spec)) {
    if (t.optional && !write_mtp) continue;
    TensorPlan p;
    p.name = t.name;
    p.shape = t.shape;
    p.dtype = stored_dtype(spec, t);
    p.values = t.role == TensorRole::kNorm       ? Values::kOnes
               : t.role == TensorRole::kScaleInv ? Values::kScales
                                                 : Values::kNormal;
    p.nbytes = *tensor_nbytes(p.dtype, p.shape);  // validated spec: cannot overflow
    if (p.dtype == DType::kF8_E4M3) p.scale_name = fp8_scale_inv_name(p.name);
    plans.push_back(std::move(p));
  }
  return plans;
}

// Groups consecutive tensors into shards of at most max_bytes (an fp8 weight stays with its scale).
std::vector<std::vector<const TensorPlan*>> shard(const std::vector<TensorPlan>& plans, uint64_t max_bytes) {
  std::vector<std::vector<const TensorPlan*>> shards(1);
  uint64_t size = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    uint64_t unit = plans[i].nbytes;
    const bool paired = !plans[i].scale_name.empty() && i + 1 < plans.size();
    if (paired) unit += plans[i + 1].nbytes;
    if (size > 0 && size + unit > max_bytes) {
      shards.emplace_back();
      size = 0;
    }
    shards.back().push_back(&plans[i]);
    if (paired) shards.back().push_back(&plans[++i]);
    size += unit;
  }
  return shards;
}

// Refuses to write over a checkpoint unless forced; when forced, removes the old weights so no stale
// shard or index survives. Other files in the directory are left alone.
Status prepare_out_dir(const SynthOptions& o) {
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot create directory: {}", o.out_dir, ec.message());
  std::vector<fs::path> weights;
  bool has_config = false;
  for (auto it = fs::directory_iterator(o.out_dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "config.json") has_config = true;
    if (name.ends_with(".safetensors") || name == "model.safetensors.index.json" || name.ends_with(".gguf")) {
      weights.push_back(it->path());
    }
  }
  if (ec) return make_error(ErrorCode::kIo, "{}: cannot list directory: {}", o.out_dir, ec.message());
  if ((has_config || !weights.empty()) && !o.force) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: already holds a checkpoint (config.json or weights); pass --force to replace it",
                      o.out_dir);
  }
  for (const fs::path& p : weights) {
    if (!p.filename().string().ends_with(".gguf")) fs::remove(p, ec);
    if (ec) return make_error(ErrorCode::kIo, "{}: cannot remove: {}", p.string(), ec.message());
  }
  return Status::ok();
}

Status write_json(const fs::path& path, const json& j) {
  return write_file(path.string(), j.dump(2) + "\n");
}

json generation_config(const SynthPreset& preset, const ModelSpec& spec) {
  json g;
  g["_from_model_config"] = true;
  auto ids = [](const std::vector<int64_t>& v) { return v.size() == 1 ? json(v[0]) : json(v); };
  if (!spec.bos_token_ids.empty()) g["bos_token_id"] = ids(spec.bos_token_ids);
  if (!spec.eos_token_ids.empty()) g["eos_token_id"] = ids(spec.eos_token_ids);
  g["do_sample"] = true;
  g["temperature"] = preset.temperature;
  g["top_p"] = preset.top_p;
  return g;
}

Status copy_tokenizer(const SynthOptions& o, const SynthPreset& preset, std::vector<std::string>* files) {
  HEARTH_ASSIGN_OR_RETURN(std::string dir, find_tokenizer_dir(preset.tokenizer_package, o.tokenizer_roots));
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    std::error_code ec;
    fs::copy_file(fs::path(dir) / name, fs::path(o.out_dir) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return make_error(ErrorCode::kIo, "copy {}/{} to {}: {}", dir, name, o.out_dir, ec.message());
    files->push_back(name);
  }
  return Status::ok();
}

Status write_weights(RunState& st, const std::vector<TensorPlan>& plans, std::vector<std::string>* files) {
  const SynthOptions& o = *st.options;
  auto shards = shard(plans, o.max_shard_bytes);
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shards.size() == 1
                                 ? std::string("model.safetensors")
                                 : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    std::vector<SafetensorsTensorToWrite> tensors;
    for (const TensorPlan* p : shards[i]) {
      tensors.push_back({p->name, p->dtype, p->shape, [&st, p](std::span<uint8_t> out) {
                           return p->values == Values::kScales ? fill_scale(st, *p, out)
                                                               : fill_tensor(st, *p, out);
                         }});
      weight_map[p->name] = file;
    }
    Status s = write_safetensors((fs::path(o.out_dir) / file).string(), tensors, {{"format", "pt"}});
    if (!s.is_ok()) return s.with_context(file);
    files->push_back(file);
    st.maybe_report(false);
  }
  if (shards.size() > 1) {
    json index = {{"metadata", {{"total_size", st.bytes_total}}}, {"weight_map", weight_map}};
    HEARTH_RETURN_IF_ERROR(write_json(fs::path(o.out_dir) / "model.safetensors.index.json", index));
    files->push_back("model.safetensors.index.json");
  }
  return Status::ok();
}

}  // namespace

Result<SynthReport> synthesize_checkpoint(const SynthOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(SynthPreset preset, find_synth_preset(o.preset));
  HEARTH_ASSIGN_OR_RETURN(
      ModelSpec spec,
      apply_synth_overrides(preset.spec, o.dtype.empty() ? preset.default_dtype : o.dtype, o.layers));
  if (o.max_shard_bytes == 0) return make_error(ErrorCode::kInvalidArgument, "synth: max_shard_bytes is 0");
  // Find the tokenizer before writing gigabytes.
  HEARTH_RETURN_IF_ERROR(find_tokenizer_dir(preset.tokenizer_package, o.tokenizer_roots).status());
  HEARTH_RETURN_IF_ERROR(prepare_out_dir(o));

  SynthReport report;
  report.spec = spec;
  try {
    json config = model_spec_to_hf_config(spec);
    config["transformers_version"] = "4.46.3";
    config["hearth_synth"] = {{"preset", preset.name}, {"seed", o.seed}, {"note", "random weights"}};
    HEARTH_RETURN_IF_ERROR(write_json(fs::path(o.out_dir) / "config.json", config));
    report.files.push_back("config.json");
    HEARTH_RETURN_IF_ERROR(
        write_json(fs::path(o.out_dir) / "generation_config.json", generation_config(preset, spec)));
    report.files.push_back("generation_config.json");
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "synth: writing config.json: {}", e.what());
  }
  HEARTH_RETURN_IF_ERROR(copy_tokenizer(o, preset, &report.files));

  const std::vector<TensorPlan> plans = plan_tensors(spec, o.write_mtp);
  RunState st;
  st.options = &o;
  st.quant = spec.quantization;
  st.threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  for (const TensorPlan& p : plans) st.bytes_total += p.nbytes;
  HEARTH_RETURN_IF_ERROR(write_weights(st, plans, &report.files));
  st.maybe_report(true);
  report.tensor_count = plans.size();
  report.tensor_bytes = st.bytes_total;
  report.seconds = std::chrono::duration<double>(Clock::now() - st.start).count();
  return report;
}

}  // namespace hearth
