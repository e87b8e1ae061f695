#include "model/gguf_convert.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_guard.h"
#include "model/fp8_block.h"
#include "model/gguf_writer.h"
#include "model/quant.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth {
namespace {

using json = nlohmann::json;

Result<json> read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{}: cannot open", path);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  HEARTH_RETURN_IF_ERROR(check_json_limits(text, {.max_bytes = 256ull << 20, .max_depth = 64}, path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(ErrorCode::kCorrupt, "{}: not valid JSON", path);
  return j;
}

std::string_view gguf_arch(Architecture a) {
  switch (a) {
    case Architecture::kQwen2: return "qwen2";
    case Architecture::kLlama: return "llama";
    case Architecture::kDeepseekV2:
    case Architecture::kDeepseekV3: break;
  }
  return "deepseek2";
}

// Llama-3 RoPE scaling as llama.cpp bakes it: per-frequency divisors of the base frequencies.
std::vector<float> llama3_rope_factors(const ModelSpec& s) {
  const RopeScaling& r = s.rope_scaling;
  const int64_t dim = s.head_dim;
  const double old_len = static_cast<double>(r.original_max_position_embeddings.value_or(8192));
  const double low_wavelen = old_len / r.low_freq_factor, high_wavelen = old_len / r.high_freq_factor;
  std::vector<float> f(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double freq = 1.0 / std::pow(s.rope_theta, static_cast<double>(2 * i) / static_cast<double>(dim));
    const double wavelen = 2.0 * M_PI / freq;
    if (wavelen < high_wavelen) {
      f[i] = 1.0f;
    } else if (wavelen > low_wavelen) {
      f[i] = static_cast<float>(r.factor);
    } else {
      const double smooth =
          (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      f[i] = static_cast<float>(1.0 / ((1.0 - smooth) / r.factor + smooth));
    }
  }
  return f;
}

Status add_model_metadata(GgufWriter& w, const ModelSpec& s, const std::string& name, DType type) {
  const std::string a(gguf_arch(s.architecture));
  auto k = [&](std::string_view key) { return a + "." + std::string(key); };
  w.add_string("general.architecture", a);
  w.add_string("general.name", name);
  if (dtype_info(type).is_quantized) w.add_u32("general.quantization_version", 2);
  w.add_u32(k("context_length"), static_cast<uint32_t>(s.max_position_embeddings));
  w.add_u32(k("embedding_length"), static_cast<uint32_t>(s.hidden_size));
  w.add_u32(k("block_count"), static_cast<uint32_t>(s.num_hidden_layers));
  w.add_u32(k("feed_forward_length"), static_cast<uint32_t>(s.intermediate_size));
  w.add_u32(k("attention.head_count"), static_cast<uint32_t>(s.num_attention_heads));
  w.add_u32(k("attention.head_count_kv"), static_cast<uint32_t>(s.num_key_value_heads));
  w.add_f32(k("attention.layer_norm_rms_epsilon"), static_cast<float>(s.rms_norm_eps));
  w.add_f32(k("rope.freq_base"), static_cast<float>(s.rope_theta));
  w.add_u32(k("vocab_size"), static_cast<uint32_t>(s.vocab_size));
  const RopeScaling& r = s.rope_scaling;
  if (s.is_mla()) {
    const MlaSpec& m = *s.mla;
    if (m.q_lora_rank > 0) w.add_u32(k("attention.q_lora_rank"), static_cast<uint32_t>(m.q_lora_rank));
    w.add_u32(k("attention.kv_lora_rank"), static_cast<uint32_t>(m.kv_lora_rank));
    w.add_u32(k("attention.key_length"), static_cast<uint32_t>(m.qk_nope_head_dim + m.qk_rope_head_dim));
    w.add_u32(k("attention.value_length"), static_cast<uint32_t>(m.v_head_dim));
    w.add_u32(k("rope.dimension_count"), static_cast<uint32_t>(m.qk_rope_head_dim));
  } else {
    w.add_u32(k("rope.dimension_count"), static_cast<uint32_t>(s.head_dim));
    if (s.head_dim * s.num_attention_heads != s.hidden_size) {
      w.add_u32(k("attention.key_length"), static_cast<uint32_t>(s.head_dim));
      w.add_u32(k("attention.value_length"), static_cast<uint32_t>(s.head_dim));
    }
  }
  switch (r.type) {
    case RopeType::kDefault:
    case RopeType::kLlama3:  // rope_freqs.weight
      break;
    case RopeType::kLinear:
      w.add_string(k("rope.scaling.type"), "linear");
      w.add_f32(k("rope.scaling.factor"), static_cast<float>(r.factor));
      break;
    case RopeType::kYarn: {
      if (!s.is_mla()) {
        return make_error(ErrorCode::kUnsupported,
                          "GGUF conversion: YaRN RoPE is only supported for DeepSeek models");
      }
      const double mscale_all_dim = r.mscale_all_dim.value_or(0.0);
      if (r.mscale.value_or(mscale_all_dim) != mscale_all_dim || r.attention_factor) {
        return make_error(ErrorCode::kUnsupported,
                          "GGUF conversion: YaRN with mscale != mscale_all_dim or an attention_factor has no "
                          "llama.cpp encoding");
      }
      w.add_string(k("rope.scaling.type"), "yarn");
      w.add_f32(k("rope.scaling.factor"), static_cast<float>(r.factor));
      w.add_u32(
          k("rope.scaling.original_context_length"),
          static_cast<uint32_t>(r.original_max_position_embeddings.value_or(s.max_position_embeddings)));
      w.add_f32(k("rope.scaling.yarn_beta_fast"), static_cast<float>(r.beta_fast));
      w.add_f32(k("rope.scaling.yarn_beta_slow"), static_cast<float>(r.beta_slow));
      w.add_f32(k("rope.scaling.yarn_log_multiplier"), static_cast<float>(0.1 * mscale_all_dim));
      break;
    }
    case RopeType::kDynamic:
      return make_error(ErrorCode::kUnsupported,
                        "GGUF conversion: dynamic RoPE scaling has no llama.cpp encoding");
  }
  if (s.is_moe()) {
    const MoeSpec& m = *s.moe;
    w.add_u32(k("expert_count"), static_cast<uint32_t>(m.n_routed_experts));
    w.add_u32(k("expert_used_count"), static_cast<uint32_t>(m.num_experts_per_tok));
    w.add_u32(k("expert_shared_count"), static_cast<uint32_t>(m.n_shared_experts));
    w.add_u32(k("expert_feed_forward_length"), static_cast<uint32_t>(m.moe_intermediate_size));
    w.add_u32(k("leading_dense_block_count"), static_cast<uint32_t>(m.first_k_dense_replace));
    w.add_f32(k("expert_weights_scale"), static_cast<float>(m.routed_scaling_factor));
    w.add_bool(k("expert_weights_norm"), m.norm_topk_prob);
    w.add_u32(k("expert_group_count"), static_cast<uint32_t>(m.n_group));
    w.add_u32(k("expert_group_used_count"), static_cast<uint32_t>(m.topk_group));
    w.add_u32(k("expert_gating_func"), m.scoring_func == ScoringFunc::kSigmoid ? 2u : 1u);
  }
  return Status::ok();
}

// tokenizer.ggml.*: llama.cpp's "gpt2" (byte-level BPE) layout from tokenizer.json.
Status add_tokenizer_metadata(GgufWriter& w, const std::string& dir, const ModelSpec& spec) {
  HEARTH_ASSIGN_OR_RETURN(json tj, read_json(dir + "/tokenizer.json"));
  const json& model = tj["model"];
  if (!model.is_object() || model.value("type", "") != "BPE" || !model["vocab"].is_object()) {
    return make_error(ErrorCode::kUnsupported,
                      "{}/tokenizer.json: only byte-level BPE tokenizers convert to GGUF", dir);
  }
  std::vector<std::string> patterns;
  const json& pre = tj["pre_tokenizer"];
  auto collect = [&](const json& p) {
    if (p.is_object() && p.value("type", "") == "Split" && p["pattern"].is_object() &&
        p["pattern"].contains("Regex"))
      patterns.push_back(p["pattern"]["Regex"].get<std::string>());
  };
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre["pretokenizers"].is_array()) {
    for (const json& p : pre["pretokenizers"]) collect(p);
  } else {
    collect(pre);
  }
  const std::string_view pre_name = tok::gguf_pre_name_for(patterns);
  if (pre_name.empty()) {
    return make_error(
        ErrorCode::kUnsupported,
        "{}/tokenizer.json: its pre-tokenizer is not one GGUF can name (deepseek-v3, qwen2, llama-bpe, "
        "gpt2)",
        dir);
  }
  const int64_t n = spec.vocab_size;
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), 1);  // 1 normal, 3 control, 4 user-defined, 5 unused
  std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= n) continue;
    tokens[id] = it.key();
    seen[id] = 1;
  }
  if (tj["added_tokens"].is_array()) {
    for (const json& t : tj["added_tokens"]) {
      const int64_t id = t.value("id", int64_t{-1});
      if (id < 0 || id >= n) continue;
      tokens[id] = t.value("content", "");
      types[id] = t.value("special", false) ? 3 : 4;
      seen[id] = 1;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!seen[i]) {
      tokens[i] = fmt::format("[PAD{}]", i);
      types[i] = 5;
    }
  }
  std::vector<std::string> merges;
  for (const json& m : model["merges"]) {
    if (m.is_string()) merges.push_back(m.get<std::string>());
    if (m.is_array() && m.size() == 2)
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre_name);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merges);
  // Special ids and flags from tokenizer_config.json (what transformers uses), else the config.
  json cfg = json::object();
  if (auto c = read_json(dir + "/tokenizer_config.json"); c.is_ok()) cfg = *c;
  auto token_id = [&](const char* key) -> std::optional<int64_t> {
    if (!cfg.contains(key)) return std::nullopt;
    const json& v = cfg[key];
    const std::string content = v.is_string()   ? v.get<std::string>()
                                : v.is_object() ? v.value("content", "")
                                                : "";
    for (int64_t i = 0; i < n; ++i)
      if (!content.empty() && tokens[i] == content) return i;
    return std::nullopt;
  };
  std::optional<int64_t> bos = token_id("bos_token"), eos = token_id("eos_token");
  if (!bos && !spec.bos_token_ids.empty()) bos = spec.bos_token_ids[0];
  if (!eos && !spec.eos_token_ids.empty()) eos = spec.eos_token_ids[0];
  if (bos) w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(*bos));
  if (eos) w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*eos));
  if (auto pad = token_id("pad_token"))
    w.add_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*pad));
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
    w.add_bool("tokenizer.ggml.add_bos_token", cfg["add_bos_token"].get<bool>());
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
    w.add_bool("tokenizer.ggml.add_eos_token", cfg["add_eos_token"].get<bool>());
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
    w.add_string("tokenizer.chat_template", cfg["chat_template"].get<std::string>());
  return Status::ok();
}

// Values of a tensor as f32 (FP8 weights dequantized with their block scales).
Status read_f32(const Checkpoint& ck, const TensorView& t, std::vector<float>& out) {
  out.resize(t.numel());
  if (t.dtype == DType::kF8_E4M3) {
    const TensorView* s = ck.find(fp8_scale_inv_name(t.name));
    if (s == nullptr)
      return make_error(ErrorCode::kCorrupt, "{}: no {} for FP8 tensor {}", t.file,
                        fp8_scale_inv_name(t.name), t.name);
    const QuantizationSpec& q = ck.spec().quantization;
    return dequantize_fp8_block(
        t, *s, {static_cast<uint32_t>(q.block_rows), static_cast<uint32_t>(q.block_cols)}, out.data());
  }
  return dequantize(t.dtype, t.data, t.numel(), out.data())
      .with_context(fmt::format("{}: {}", t.file, t.name));
}

// llama.cpp's permute for Llama q/k: per head, rows (i, i + d/2) become (2i, 2i + 1).
void permute_rope_rows(std::vector<float>& v, int64_t heads, int64_t rows, int64_t cols) {
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<float> out(v.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t src = h * hd + j * half + i, dst = h * hd + 2 * i + j;
        std::copy(v.begin() + src * cols, v.begin() + (src + 1) * cols, out.begin() + dst * cols);
      }
  v.swap(out);
}

}  // namespace

DType gguf_storage_type(DType want, const std::string& hf_name, const std::vector<uint64_t>& shape) {
  if (shape.size() == 1 || hf_name.ends_with("mlp.gate.weight")) return DType::kF32;
  const uint64_t cols = shape.back();
  for (DType t : {want, DType::kQ8_0, DType::kF16}) {
    if (cols % dtype_info(t).block_elems == 0) return t;
  }
  return DType::kF32;
}

Result<DType> gguf_convert_type_from_name(std::string_view name) {
  static const std::map<std::string, DType, std::less<>> kTypes = {
      {"f32", DType::kF32},   {"f16", DType::kF16},   {"bf16", DType::kBF16}, {"q8_0", DType::kQ8_0},
      {"q4_0", DType::kQ4_0}, {"q4_k", DType::kQ4_K}, {"q6_k", DType::kQ6_K}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown GGUF type '{}' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)", name);
  }
  return it->second;
}

Status convert_to_gguf(const Checkpoint& ck, const std::string& out_path, const GgufConvertOptions& options) {
  if (ck.format() != CheckpointFormat::kSafetensors) {
    return make_error(ErrorCode::kInvalidArgument, "{}: already a GGUF file", ck.path());
  }
  namespace fs = std::filesystem;
  const ModelSpec& s = ck.spec();
  const std::string dir =
      fs::is_directory(ck.path()) ? ck.path() : fs::path(ck.path()).parent_path().string();
  GgufWriter w;
  const std::string name = options.name.empty() ? fs::path(dir).filename().string() : options.name;
  HEARTH_RETURN_IF_ERROR(add_model_metadata(w, s, name, options.type));
  HEARTH_RETURN_IF_ERROR(add_tokenizer_metadata(w, dir, s));

  // Tensor plan: (GGUF name, type, shape, the HF tensors it is made of).
  struct Planned {
    std::string gguf;
    DType type;
    std::vector<uint64_t> shape;
    std::vector<const TensorView*> parts;  // >1: stacked experts
    bool permute = false;
    int64_t heads = 0;
  };
  std::vector<Planned> plan;
  for (const TensorView* t : ck.tensors()) {
    if (t->name.ends_with(kFp8ScaleInvSuffix)) continue;
    const std::string_view rest = std::string_view(t->name);
    if (rest.starts_with("model.layers.")) {  // MTP layers (past num_hidden_layers) are not converted
      const int64_t layer = std::atoll(t->name.c_str() + std::string_view("model.layers.").size());
      if (layer >= s.num_hidden_layers) continue;
    }
    const size_t ex = t->name.find(".mlp.experts.");
    if (ex != std::string::npos) {
      if (t->name.find(".mlp.experts.0.") == std::string::npos) continue;  // planned with expert 0
      Planned p;
      p.gguf = gguf_tensor_name(t->name);
      p.shape = t->shape;
      p.shape.insert(p.shape.begin(), static_cast<uint64_t>(s.moe->n_routed_experts));
      p.type = gguf_storage_type(options.type, t->name, t->shape);
      for (int64_t e = 0; e < s.moe->n_routed_experts; ++e) {
        std::string n = t->name;
        n.replace(n.find(".mlp.experts.0.") + 13, 1, std::to_string(e));
        const TensorView* part = ck.find(n);
        if (part == nullptr)
          return make_error(ErrorCode::kNotFound, "{}: tensor {} is missing", ck.path(), n);
        p.parts.push_back(part);
      }
      plan.push_back(std::move(p));
      continue;
    }
    Planned p;
    p.gguf = gguf_tensor_name(t->name);
    if (p.gguf.empty())
      return make_error(ErrorCode::kUnsupported, "{}: tensor {} has no GGUF name", ck.path(), t->name);
    p.shape = t->shape;
    p.type = gguf_storage_type(options.type, t->name, t->shape);
    p.parts = {t};
    if (s.architecture == Architecture::kLlama) {
      if (t->name.ends_with("self_attn.q_proj.weight") || t->name.ends_with("self_attn.q_proj.bias")) {
        p.permute = true;
        p.heads = s.num_attention_heads;
      } else if (t->name.ends_with("self_attn.k_proj.weight") || t->name.ends_with("self_attn.k_proj.bias")) {
        p.permute = true;
        p.heads = s.num_key_value_heads;
      }
    }
    plan.push_back(std::move(p));
  }
  if (s.architecture == Architecture::kLlama && s.rope_scaling.type == RopeType::kLlama3) {
    std::vector<float> f = llama3_rope_factors(s);
    std::vector<uint8_t> bytes(f.size() * 4);
    std::memcpy(bytes.data(), f.data(), bytes.size());
    w.add_tensor("rope_freqs.weight", DType::kF32, {f.size()}, bytes);
  }
  size_t done = 0;
  const size_t total = plan.size();
  for (const Planned& p : plan) {
    w.add_tensor(p.gguf, p.type, p.shape,
                 [&ck, &p, &options, &done, total](std::span<uint8_t> out) -> Status {
                   std::vector<float> all, part;
                   for (const TensorView* t : p.parts) {
                     HEARTH_RETURN_IF_ERROR(read_f32(ck, *t, part));
                     if (p.permute) {
                       const int64_t rows = static_cast<int64_t>(t->shape[0]);
                       const int64_t cols = t->shape.size() == 2 ? static_cast<int64_t>(t->shape[1]) : 1;
                       permute_rope_rows(part, p.heads, rows, cols);
                     }
                     all.insert(all.end(), part.begin(), part.end());
                   }
                   HEARTH_RETURN_IF_ERROR(quantize(p.type, all, out).with_context(p.gguf));
                   if (options.progress) options.progress(++done, total, p.gguf);
                   return Status::ok();
                 });
  }
  HEARTH_RETURN_IF_ERROR(w.write(out_path));
  auto reopened = Checkpoint::open(out_path);
  if (!reopened.is_ok()) return reopened.status().with_context("the written GGUF does not load");
  return Status::ok();
}

}  // namespace hearth
