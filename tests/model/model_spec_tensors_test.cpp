// Derived numbers of a ModelSpec: the tensors each architecture needs (names as in the published
// checkpoints' index files), parameter counts against the published model sizes, KV-cache bytes.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "model/arch_tensors.h"
#include "model/model_spec.h"

namespace hearth {
namespace {

ModelSpec load(const std::string& name) {
  auto r = load_model_spec(std::string(HEARTH_FIXTURES_DIR) + "/configs/" + name);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : ModelSpec{};
}

std::map<std::string, ExpectedTensor> by_name(const std::vector<ExpectedTensor>& v) {
  std::map<std::string, ExpectedTensor> m;
  for (const auto& t : v) EXPECT_TRUE(m.emplace(t.name, t).second) << "duplicate " << t.name;
  return m;
}

using Shape = std::vector<uint64_t>;

TEST(ModelSpecTensors, R1DistillQwen15BIs1point78BParameters) {
  ModelSpec s = load("deepseek-r1-distill-qwen-1.5b.json");
  ParameterCounts c = count_parameters(s);
  EXPECT_EQ(c.total, 1777088000u);
  EXPECT_EQ(c.embedding, 151936u * 1536);
  EXPECT_EQ(c.lm_head, 151936u * 1536);
  EXPECT_EQ(c.active_per_token, c.total - c.embedding);
  EXPECT_EQ(kv_cache_bytes_per_token(s), 2u * 2 * 128 * 28 * 2);
  EXPECT_EQ(weights_bytes(s), c.total * 2);
}

TEST(ModelSpecTensors, R1DistillQwen7BIs7point6BParameters) {
  ModelSpec s = load("deepseek-r1-distill-qwen-7b.json");
  EXPECT_EQ(count_parameters(s).total, 7615616512u);
  EXPECT_EQ(kv_cache_bytes_per_token(s), 2u * 4 * 128 * 28 * 2);
}

TEST(ModelSpecTensors, R1DistillLlama8BIs8point0BParameters) {
  ModelSpec s = load("deepseek-r1-distill-llama-8b.json");
  EXPECT_EQ(count_parameters(s).total, 8030261248u);
  EXPECT_EQ(kv_cache_bytes_per_token(s, DType::kF16), 2u * 8 * 128 * 32 * 2);
}

TEST(ModelSpecTensors, DeepSeekV3Is671BTotalAnd37BActive) {
  ModelSpec s = load("deepseek-v3.json");
  ParameterCounts c = count_parameters(s);
  EXPECT_GT(c.total, 670.5e9);
  EXPECT_LT(c.total, 671.5e9);
  // DeepSeek: "36.6B activated (including 0.9B for the output head)".
  EXPECT_GT(c.active_per_token, 36.4e9);
  EXPECT_LT(c.active_per_token, 37.0e9);
  // The MTP module: 11.5B unique + a copy of the embedding and head (0.9B each).
  EXPECT_GT(c.mtp, 13.0e9);
  EXPECT_LT(c.mtp, 13.6e9);
}

TEST(ModelSpecTensors, DeepSeekV3KvCacheIs70272BytesPerTokenInBf16) {
  ModelSpec s = load("deepseek-v3.json");
  EXPECT_EQ(kv_cache_bytes_per_token(s, DType::kBF16), 70272u);
  EXPECT_EQ(kv_cache_bytes_per_token(s, DType::kF8_E4M3), 35136u);
}

TEST(ModelSpecTensors, DeepSeekV2LiteIs15point7BTotalAnd2point4BActive) {
  ModelSpec s = load("deepseek-v2-lite.json");
  ParameterCounts c = count_parameters(s);
  EXPECT_GT(c.total, 15.6e9);
  EXPECT_LT(c.total, 15.8e9);
  EXPECT_GT(c.active_per_token, 2.35e9);
  EXPECT_LT(c.active_per_token, 2.5e9);
  EXPECT_EQ(kv_cache_bytes_per_token(s), (512u + 64) * 27 * 2);
}

TEST(ModelSpecTensors, DeepSeekV3ListsTheTensorsOfItsPublishedIndex) {
  ModelSpec s = load("deepseek-v3.json");
  auto list = expected_tensors(s);
  // The published DeepSeek-V3/R1 checkpoint holds 91,991 tensors (MTP layer 61 included).
  EXPECT_EQ(list.size(), 91991u);
  EXPECT_EQ(expected_tensor_count(s), list.size());
  auto m = by_name(list);
  auto shape = [&](const std::string& n) -> Shape {
    auto it = m.find(n);
    EXPECT_TRUE(it != m.end()) << n;
    return it == m.end() ? Shape{} : it->second.shape;
  };
  EXPECT_EQ(shape("model.embed_tokens.weight"), (Shape{129280, 7168}));
  EXPECT_EQ(shape("lm_head.weight"), (Shape{129280, 7168}));
  EXPECT_EQ(shape("model.norm.weight"), (Shape{7168}));
  EXPECT_EQ(shape("model.layers.0.self_attn.q_a_proj.weight"), (Shape{1536, 7168}));
  EXPECT_EQ(shape("model.layers.0.self_attn.q_a_proj.weight_scale_inv"), (Shape{12, 56}));
  EXPECT_EQ(shape("model.layers.0.self_attn.q_a_layernorm.weight"), (Shape{1536}));
  EXPECT_EQ(shape("model.layers.0.self_attn.q_b_proj.weight"), (Shape{24576, 1536}));
  EXPECT_EQ(shape("model.layers.0.self_attn.kv_a_proj_with_mqa.weight"), (Shape{576, 7168}));
  EXPECT_EQ(shape("model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"), (Shape{5, 56}));
  EXPECT_EQ(shape("model.layers.0.self_attn.kv_a_layernorm.weight"), (Shape{512}));
  EXPECT_EQ(shape("model.layers.0.self_attn.kv_b_proj.weight"), (Shape{32768, 512}));
  EXPECT_EQ(shape("model.layers.0.self_attn.o_proj.weight"), (Shape{7168, 16384}));
  EXPECT_EQ(shape("model.layers.2.mlp.down_proj.weight"), (Shape{7168, 18432}));
  EXPECT_EQ(shape("model.layers.2.mlp.down_proj.weight_scale_inv"), (Shape{56, 144}));
  EXPECT_EQ(m.count("model.layers.3.mlp.gate_proj.weight"), 0u);
  EXPECT_EQ(shape("model.layers.3.mlp.gate.weight"), (Shape{256, 7168}));
  EXPECT_EQ(m.count("model.layers.3.mlp.gate.weight_scale_inv"), 0u) << "the router stays bf16";
  EXPECT_EQ(shape("model.layers.3.mlp.gate.e_score_correction_bias"), (Shape{256}));
  EXPECT_EQ(shape("model.layers.60.mlp.experts.255.gate_proj.weight"), (Shape{2048, 7168}));
  EXPECT_EQ(shape("model.layers.60.mlp.experts.255.down_proj.weight_scale_inv"), (Shape{56, 16}));
  EXPECT_EQ(shape("model.layers.3.mlp.shared_experts.up_proj.weight"), (Shape{2048, 7168}));
  EXPECT_EQ(shape("model.layers.61.eh_proj.weight"), (Shape{7168, 14336}));
  EXPECT_EQ(m.count("model.layers.61.eh_proj.weight_scale_inv"), 0u);
  EXPECT_EQ(shape("model.layers.61.shared_head.head.weight"), (Shape{129280, 7168}));
  EXPECT_TRUE(m.at("model.layers.61.enorm.weight").optional);
  EXPECT_TRUE(m.at("model.layers.61.mlp.experts.0.up_proj.weight").optional);
  EXPECT_FALSE(m.at("model.layers.60.mlp.experts.0.up_proj.weight").optional);

  EXPECT_EQ(stored_dtype(s, m.at("model.layers.0.self_attn.o_proj.weight")), DType::kF8_E4M3);
  EXPECT_EQ(stored_dtype(s, m.at("model.layers.0.self_attn.o_proj.weight_scale_inv")), DType::kF32);
  EXPECT_EQ(stored_dtype(s, m.at("model.layers.3.mlp.gate.e_score_correction_bias")), DType::kF32);
  EXPECT_EQ(stored_dtype(s, m.at("model.layers.3.mlp.gate.weight")), DType::kBF16);
  EXPECT_EQ(stored_dtype(s, m.at("model.embed_tokens.weight")), DType::kBF16);
}

TEST(ModelSpecTensors, DeepSeekV3WeightsMatchThePublishedCheckpointSize) {
  // The published 163 shards hold 641.3 GiB (688.6e9 bytes) including the MTP layer, which adds
  // ~11.5e9 fp8 bytes and 2 x 1.85e9 bf16 bytes; the main model is therefore ~673e9 bytes.
  ModelSpec s = load("deepseek-v3.json");
  const double bytes = static_cast<double>(weights_bytes(s));
  EXPECT_GT(bytes, 670e9);
  EXPECT_LT(bytes, 676e9);
}

TEST(ModelSpecTensors, DeepSeekV2LiteUsesQProjAndTwoFusedSharedExperts) {
  auto m = by_name(expected_tensors(load("deepseek-v2-lite.json")));
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_proj.weight").shape, (Shape{16 * 192, 2048}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.q_a_proj.weight"), 0u);
  EXPECT_EQ(m.at("model.layers.0.mlp.gate_proj.weight").shape, (Shape{10944, 2048}));
  EXPECT_EQ(m.at("model.layers.1.mlp.shared_experts.gate_proj.weight").shape, (Shape{2816, 2048}));
  EXPECT_EQ(m.at("model.layers.26.mlp.experts.63.down_proj.weight").shape, (Shape{2048, 1408}));
  EXPECT_EQ(m.count("model.layers.1.mlp.gate.e_score_correction_bias"), 0u) << "greedy routing has no bias";
  EXPECT_EQ(m.count("model.layers.1.mlp.experts.0.down_proj.weight_scale_inv"), 0u);
  EXPECT_EQ(m.count("model.layers.27.input_layernorm.weight"), 0u);
}

TEST(ModelSpecTensors, QwenHasQkvBiasesButNoOutputBias) {
  ModelSpec s = load("deepseek-r1-distill-qwen-1.5b.json");
  auto m = by_name(expected_tensors(s));
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_proj.bias").shape, (Shape{1536}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.k_proj.bias").shape, (Shape{256}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.v_proj.weight").shape, (Shape{256, 1536}));
  EXPECT_EQ(m.count("model.layers.0.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(m.at("model.layers.27.mlp.down_proj.weight").shape, (Shape{1536, 8960}));
  EXPECT_EQ(m.size(), 3u + 28 * 12);
  EXPECT_EQ(expected_tensor_count(s), m.size());
}

TEST(ModelSpecTensors, TiedEmbeddingsHaveNoLmHead) {
  ModelSpec s = load("deepseek-r1-distill-qwen-1.5b.json");
  s.tie_word_embeddings = true;
  auto m = by_name(expected_tensors(s));
  EXPECT_EQ(m.count("lm_head.weight"), 0u);
  ParameterCounts c = count_parameters(s);
  EXPECT_EQ(c.lm_head, 0u);
  EXPECT_EQ(c.active_per_token, c.total) << "the tied matrix is read as the output head";
}

TEST(ModelSpecTensors, LlamaBiasFlagsAddBiases) {
  ModelSpec s = load("deepseek-r1-distill-llama-8b.json");
  EXPECT_EQ(by_name(expected_tensors(s)).count("model.layers.0.self_attn.q_proj.bias"), 0u);
  s.attention_bias = true;
  s.mlp_bias = true;
  auto m = by_name(expected_tensors(s));
  EXPECT_EQ(m.at("model.layers.0.self_attn.o_proj.bias").shape, (Shape{4096}));
  EXPECT_EQ(m.at("model.layers.0.mlp.up_proj.bias").shape, (Shape{14336}));
}

TEST(ModelSpecTensors, Fp8ScaleShapesRoundUp) {
  QuantizationSpec q;
  EXPECT_EQ(fp8_scale_shape({576, 7168}, q), (Shape{5, 56}));
  EXPECT_EQ(fp8_scale_shape({64, 64}, q), (Shape{1, 1}));
  EXPECT_EQ(fp8_scale_shape({129, 256}, q), (Shape{2, 2}));
}

}  // namespace
}  // namespace hearth
