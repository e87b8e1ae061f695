#include "model/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "model/arch_tensors.h"
#include "model/fp8_block.h"
#include "model/gguf.h"
#include "model/quant.h"
#include "model/safetensors.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

std::string shape_str(const std::vector<uint64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

bool is_plain_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

std::vector<std::string> side_files(const fs::path& dir) {
  std::vector<std::string> found;
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "tokenizer.model"}) {
    std::error_code ec;
    if (fs::is_regular_file(dir / name, ec)) found.emplace_back(name);
  }
  return found;
}

bool has_gguf_magic(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char magic[4] = {};
  const size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::string_view(magic, 4) == "GGUF";
}

}  // namespace

std::string_view checkpoint_format_name(CheckpointFormat f) {
  return f == CheckpointFormat::kGguf ? "gguf" : "safetensors";
}

Result<std::shared_ptr<Checkpoint>> Checkpoint::open(const std::string& path) {
  auto ckpt = std::shared_ptr<Checkpoint>(new Checkpoint());
  ckpt->path_ = path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) {
    HEARTH_RETURN_IF_ERROR(ckpt->open_safetensors(path));
  } else if (fs::is_regular_file(st) && path.ends_with(".safetensors")) {
    HEARTH_RETURN_IF_ERROR(ckpt->open_safetensors(path));
  } else if (fs::is_regular_file(st) && (path.ends_with(".gguf") || has_gguf_magic(path))) {
    HEARTH_RETURN_IF_ERROR(ckpt->open_gguf(path));
  } else if (fs::is_regular_file(st)) {
    return make_error(ErrorCode::kUnsupported, "{}: not a checkpoint directory, .safetensors or .gguf file",
                      path);
  } else {
    return make_error(ErrorCode::kNotFound, "{}: no such file or directory", path);
  }
  return ckpt;
}

Status Checkpoint::open_safetensors(const std::string& path) {
  format_ = CheckpointFormat::kSafetensors;
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const std::string config = (dir / "config.json").string();
  if (!fs::is_regular_file(config, ec)) {
    return make_error(ErrorCode::kNotFound, "{}: no config.json (a Hugging Face checkpoint needs one)",
                      dir.string());
  }
  HEARTH_ASSIGN_OR_RETURN(spec_, load_model_spec(config));
  HEARTH_ASSIGN_OR_RETURN(safetensors_, SafetensorsCheckpoint::open_dir(path));
  for (const auto& f : safetensors_->files()) files_.push_back(f->path());
  tensors_ = safetensors_->tensors();
  for (const TensorView* t : tensors_) by_hf_name_.emplace(t->name, t);
  tokenizer_files_ = side_files(dir);
  return validate_hf(dir.string());
}

const TensorView* Checkpoint::find(std::string_view hf_name) const {
  auto it = by_hf_name_.find(std::string(hf_name));
  return it == by_hf_name_.end() ? nullptr : it->second;
}

Status Checkpoint::validate_hf(const std::string& where) {
  const bool fp8 = spec_.quantization.method == QuantMethod::kFp8;
  std::unordered_set<const TensorView*> accounted;
  Status st = for_each_expected_tensor(spec_, [&](const ExpectedTensor& e) -> Status {
    if (e.role == TensorRole::kScaleInv) return Status::ok();  // checked with its weight
    if (e.optional) ++optional_expected_;
    const TensorView* t = find(e.name);
    if (t == nullptr) {
      if (e.optional) return Status::ok();
      return make_error(ErrorCode::kNotFound, "{}: tensor '{}' is missing ({} {}, required by config.json)",
                        where, e.name, tensor_role_name(e.role), shape_str(e.shape));
    }
    if (e.optional) ++optional_present_;
    accounted.insert(t);
    if (t->shape != e.shape) {
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' has shape {}, config.json implies {}", t->file,
                        e.name, shape_str(t->shape), shape_str(e.shape));
    }
    if (is_plain_float(t->dtype)) return Status::ok();
    if (t->dtype != DType::kF8_E4M3 || !e.fp8_capable) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: tensor '{}' has dtype {}; a {} tensor must be F32, F16 or BF16{}", t->file,
                        e.name, dtype_name(t->dtype), tensor_role_name(e.role),
                        e.fp8_capable ? " (or F8_E4M3 with weight_scale_inv)" : "");
    }
    if (!fp8) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: tensor '{}' is F8_E4M3 but config.json has no fp8 quantization_config", t->file,
                        e.name);
    }
    const std::string scale_name = fp8_scale_inv_name(e.name);
    const TensorView* scale = find(scale_name);
    if (scale == nullptr) {
      return make_error(ErrorCode::kNotFound, "{}: fp8 tensor '{}' has no '{}'", t->file, e.name, scale_name);
    }
    accounted.insert(scale);
    return validate_fp8_block_pair(*t, *scale, static_cast<uint32_t>(spec_.quantization.block_rows),
                                   static_cast<uint32_t>(spec_.quantization.block_cols));
  });
  HEARTH_RETURN_IF_ERROR(st);
  for (const TensorView* t : tensors_) {
    if (!accounted.count(t)) unexpected_.push_back(t->name);
  }
  std::sort(unexpected_.begin(), unexpected_.end());
  return Status::ok();
}

Status Checkpoint::open_gguf(const std::string& file) {
  format_ = CheckpointFormat::kGguf;
  HEARTH_ASSIGN_OR_RETURN(gguf_, GgufFile::open(file));
  HEARTH_ASSIGN_OR_RETURN(spec_, model_spec_from_gguf(*gguf_));
  files_ = {file};
  for (const TensorView& t : gguf_->tensors()) tensors_.push_back(&t);
  if (gguf_->find("tokenizer.ggml.model") != nullptr)
    tokenizer_files_.emplace_back("tokenizer.ggml (embedded)");
  for (const char* key : {"general.name", "general.file_type", "general.quantization_version"}) {
    if (const GgufValue* v = gguf_->find(key)) info_[key] = v->describe();
  }
  if (gguf_->find_tensor("rope_freqs.weight") != nullptr) {
    info_["rope"] = "rope_freqs.weight (llama3 frequency scaling baked into a tensor)";
  }
  return validate_gguf();
}

Status Checkpoint::validate_gguf() {
  std::unordered_set<const TensorView*> accounted;
  const std::string& file = gguf_->path();
  // One expected tensor against the GGUF tensor `name`, whose shape must be `shape`.
  auto check = [&](const std::string& name, const std::string& hf, const std::vector<uint64_t>& shape,
                   TensorRole role) -> Status {
    const TensorView* t = gguf_->find_tensor(name);
    if (t == nullptr) {
      return make_error(ErrorCode::kNotFound,
                        "{}: tensor '{}' ({}) is missing ({} {}, required by the metadata)", file, name, hf,
                        tensor_role_name(role), shape_str(shape));
    }
    accounted.insert(t);
    if (t->shape != shape) {
      return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' ({}) has shape {}, the metadata implies {}",
                        file, name, hf, shape_str(t->shape), shape_str(shape));
    }
    if (!can_dequantize(t->dtype)) {
      return make_error(ErrorCode::kUnsupported, "{}: tensor '{}' has type {}, which hearth cannot decode",
                        file, name, dtype_name(t->dtype));
    }
    return Status::ok();
  };
  Status st = for_each_expected_tensor(spec_, [&](const ExpectedTensor& e) -> Status {
    if (e.role == TensorRole::kScaleInv) return Status::ok();
    if (e.optional) {  // llama.cpp does not name MTP tensors the same way: not checked
      ++optional_expected_;
      return Status::ok();
    }
    const std::string name = gguf_tensor_name(e.name);
    if (name.empty()) {
      return make_error(ErrorCode::kInternal, "{}: no GGUF name for tensor '{}'", file, e.name);
    }
    if (e.role == TensorRole::kExpert) {  // stacked [experts, out, in]; checked once per projection
      if (e.name.find(".experts.0.") == std::string::npos) return Status::ok();
      std::vector<uint64_t> stacked = e.shape;
      stacked.insert(stacked.begin(), static_cast<uint64_t>(spec_.moe->n_routed_experts));
      const Status s = check(name, e.name, stacked, e.role);
      if (s.is_ok()) by_hf_name_.emplace(name, gguf_->find_tensor(name));  // found by its GGUF name
      return s;
    }
    if (e.name.ends_with("kv_b_proj.weight") && gguf_->find_tensor(name) == nullptr) {
      // Files converted for llama.cpp's absorbed MLA split kv_b into k_b and v_b (3-D per head).
      const std::string base = name.substr(0, name.size() - std::string_view("attn_kv_b.weight").size());
      const uint64_t heads = static_cast<uint64_t>(spec_.num_attention_heads);
      const uint64_t rank = static_cast<uint64_t>(spec_.mla->kv_lora_rank);
      const uint64_t nope = static_cast<uint64_t>(spec_.mla->qk_nope_head_dim);
      const uint64_t v = static_cast<uint64_t>(spec_.mla->v_head_dim);
      HEARTH_RETURN_IF_ERROR(check(base + "attn_k_b.weight", e.name, {heads, rank, nope}, e.role));
      return check(base + "attn_v_b.weight", e.name, {heads, v, rank}, e.role);
    }
    if (e.name.ends_with("kv_b_proj.weight")) {  // some files carry both forms
      const std::string base = name.substr(0, name.size() - std::string_view("attn_kv_b.weight").size());
      for (const char* split : {"attn_k_b.weight", "attn_v_b.weight"}) {
        if (const TensorView* t = gguf_->find_tensor(base + split)) accounted.insert(t);
      }
    }
    const Status s = check(name, e.name, e.shape, e.role);
    if (s.is_ok()) by_hf_name_.emplace(e.name, gguf_->find_tensor(name));
    return s;
  });
  HEARTH_RETURN_IF_ERROR(st);
  if (const TensorView* f = gguf_->find_tensor("rope_freqs.weight")) {  // Llama-3 RoPE factors
    const uint64_t half = static_cast<uint64_t>(spec_.head_dim / 2);
    if (f->shape != std::vector<uint64_t>{half} || f->dtype != DType::kF32) {
      return make_error(ErrorCode::kCorrupt, "{}: rope_freqs.weight must be F32 [{}], got {} {}",
                        gguf_->path(), half, dtype_name(f->dtype), shape_str(f->shape));
    }
    accounted.insert(f);
    by_hf_name_.emplace("rope_freqs.weight", f);
  }
  for (const TensorView* t : tensors_) {
    if (!accounted.count(t)) unexpected_.push_back(t->name);
  }
  std::sort(unexpected_.begin(), unexpected_.end());
  return Status::ok();
}

std::map<DType, DTypeStats> Checkpoint::dtype_stats() const {
  std::map<DType, DTypeStats> stats;
  for (const TensorView* t : tensors_) {
    DTypeStats& s = stats[t->dtype];
    ++s.tensors;
    s.bytes += t->data.size();
  }
  return stats;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const TensorView* t : tensors_) total += t->data.size();
  return total;
}

}  // namespace hearth

namespace hearth {
namespace {

using json = nlohmann::json;

json rope_json(const ModelSpec& s) {
  const RopeScaling& r = s.rope_scaling;
  json j = {{"theta", s.rope_theta}, {"type", std::string(rope_type_name(r.type))}};
  if (r.type == RopeType::kDefault) return j;
  j["factor"] = r.factor;
  if (r.original_max_position_embeddings)
    j["original_max_position_embeddings"] = *r.original_max_position_embeddings;
  if (r.type == RopeType::kYarn) {
    j["beta_fast"] = r.beta_fast;
    j["beta_slow"] = r.beta_slow;
    if (r.mscale) j["mscale"] = *r.mscale;
    if (r.mscale_all_dim) j["mscale_all_dim"] = *r.mscale_all_dim;
    if (r.attention_factor) j["attention_factor"] = *r.attention_factor;
  }
  if (r.type == RopeType::kLlama3) {
    j["low_freq_factor"] = r.low_freq_factor;
    j["high_freq_factor"] = r.high_freq_factor;
  }
  return j;
}

json attention_json(const ModelSpec& s) {
  json j = {{"heads", s.num_attention_heads}, {"head_dim", s.head_dim}};
  if (s.is_mla()) {
    j["type"] = "mla";
    j["q_lora_rank"] = s.mla->q_lora_rank > 0 ? json(s.mla->q_lora_rank) : json(nullptr);
    j["kv_lora_rank"] = s.mla->kv_lora_rank;
    j["qk_nope_head_dim"] = s.mla->qk_nope_head_dim;
    j["qk_rope_head_dim"] = s.mla->qk_rope_head_dim;
    j["v_head_dim"] = s.mla->v_head_dim;
  } else {
    j["type"] = s.num_key_value_heads == s.num_attention_heads ? "mha" : "gqa";
    j["kv_heads"] = s.num_key_value_heads;
  }
  j["bias"] = s.attention_bias;
  return j;
}

json moe_json(const ModelSpec& s) {
  if (!s.moe) return nullptr;
  const MoeSpec& m = *s.moe;
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < s.num_hidden_layers; ++l) moe_layers += s.is_moe_layer(l) ? 1 : 0;
  return {{"routed_experts", m.n_routed_experts},
          {"shared_experts", m.n_shared_experts},
          {"experts_per_token", m.num_experts_per_tok},
          {"expert_intermediate_size", m.moe_intermediate_size},
          {"moe_layers", moe_layers},
          {"first_k_dense_replace", m.first_k_dense_replace},
          {"moe_layer_freq", m.moe_layer_freq},
          {"n_group", m.n_group},
          {"topk_group", m.topk_group},
          {"topk_method", std::string(topk_method_name(m.topk_method))},
          {"scoring_func", std::string(scoring_func_name(m.scoring_func))},
          {"norm_topk_prob", m.norm_topk_prob},
          {"routed_scaling_factor", m.routed_scaling_factor}};
}

}  // namespace

json describe_checkpoint(const Checkpoint& c) {
  const ModelSpec& s = c.spec();
  const ParameterCounts p = count_parameters(s);
  json j;
  j["path"] = c.path();
  j["format"] = std::string(checkpoint_format_name(c.format()));
  j["architecture"] = std::string(architecture_name(s.architecture));
  j["model_type"] = std::string(architecture_model_type(s.architecture));
  j["parameters"] = {{"total", p.total},
                     {"active_per_token", p.active_per_token},
                     {"embedding", p.embedding},
                     {"lm_head", p.lm_head},
                     {"attention", p.attention},
                     {"dense_mlp", p.dense_mlp},
                     {"routed_experts", p.routed_experts},
                     {"shared_experts", p.shared_experts},
                     {"router", p.router},
                     {"norms", p.norms},
                     {"mtp", p.mtp}};
  j["layers"] = s.num_hidden_layers;
  j["hidden_size"] = s.hidden_size;
  j["intermediate_size"] = s.intermediate_size;
  j["vocab_size"] = s.vocab_size;
  j["tie_word_embeddings"] = s.tie_word_embeddings;
  j["attention"] = attention_json(s);
  j["moe"] = moe_json(s);
  j["context_length"] = s.max_position_embeddings;
  j["rope"] = rope_json(s);
  j["kv_cache_bytes_per_token"] = {{"dtype", "BF16"}, {"bytes", kv_cache_bytes_per_token(s, DType::kBF16)}};
  j["torch_dtype"] = std::string(torch_dtype_name(s.torch_dtype));
  json dtypes = json::object();
  for (const auto& [dt, st] : c.dtype_stats()) {
    dtypes[std::string(dtype_name(dt))] = {{"tensors", st.tensors}, {"bytes", st.bytes}};
  }
  j["dtypes"] = dtypes;
  j["tensor_count"] = c.tensors().size();
  j["total_bytes"] = c.total_bytes();
  j["files"] = c.files();
  if (s.quantization.method == QuantMethod::kFp8) {
    j["quantization"] = {{"method", "fp8"},
                         {"fmt", s.quantization.fmt},
                         {"weight_block_size", {s.quantization.block_rows, s.quantization.block_cols}},
                         {"activation_scheme", s.quantization.activation_scheme}};
  } else {
    // GGUF block quantization: the block types present (Q8_0, Q4_K, ...).
    json types = json::array();
    for (const auto& [dt, st] : c.dtype_stats()) {
      if (dtype_info(dt).is_quantized) types.push_back(std::string(dtype_name(dt)));
    }
    j["quantization"] = types.empty() ? json(nullptr) : json{{"method", "gguf"}, {"types", types}};
  }
  j["mtp"] = {{"layers", s.num_nextn_predict_layers},
              {"tensors_expected", c.optional_expected()},
              {"tensors_present", c.optional_present()}};
  j["bos_token_id"] = s.bos_token_ids;
  j["eos_token_id"] = s.eos_token_ids;
  j["tokenizer_files"] = c.tokenizer_files();
  j["unexpected_tensors"] = c.unexpected_tensors();
  if (!c.info().empty()) j["info"] = c.info();
  return j;
}

}  // namespace hearth
