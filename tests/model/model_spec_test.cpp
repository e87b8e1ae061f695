// config.json -> ModelSpec: real published configs parse to their published shapes, both RoPE
// spellings agree, and every malformed field is rejected with an error that names it.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "model/model_spec.h"

namespace hearth {
namespace {

using json = nlohmann::json;

std::string fixture_text(const std::string& name) {
  auto r = read_file(std::string(HEARTH_FIXTURES_DIR) + "/configs/" + name, 1 << 20);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : std::string();
}

json fixture(const std::string& name) {
  return json::parse(fixture_text(name));
}

ModelSpec parse_ok(const json& j) {
  auto r = parse_model_spec(j.dump());
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : ModelSpec{};
}

// Parses `j` expecting failure; returns the message.
std::string parse_error(const json& j) {
  auto r = parse_model_spec(j.dump());
  EXPECT_FALSE(r.is_ok()) << "accepted: " << j.dump();
  return r.is_ok() ? std::string() : r.status().message();
}

TEST(ModelSpecConfig, R1DistillQwen15BHasItsPublishedShape) {
  ModelSpec s = parse_ok(fixture("deepseek-r1-distill-qwen-1.5b.json"));
  EXPECT_EQ(s.architecture, Architecture::kQwen2);
  EXPECT_EQ(s.hidden_size, 1536);
  EXPECT_EQ(s.num_hidden_layers, 28);
  EXPECT_EQ(s.num_attention_heads, 12);
  EXPECT_EQ(s.num_key_value_heads, 2);
  EXPECT_EQ(s.head_dim, 128);
  EXPECT_EQ(s.intermediate_size, 8960);
  EXPECT_EQ(s.vocab_size, 151936);
  EXPECT_EQ(s.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(s.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(s.rope_theta, 10000.0);
  EXPECT_EQ(s.rope_scaling.type, RopeType::kDefault);
  EXPECT_FALSE(s.tie_word_embeddings);
  EXPECT_TRUE(s.attention_bias) << "Qwen2 always has q/k/v biases";
  EXPECT_EQ(s.torch_dtype, DType::kBF16);
  EXPECT_EQ(s.bos_token_ids, std::vector<int64_t>{151643});
  EXPECT_EQ(s.eos_token_ids, std::vector<int64_t>{151643});
  EXPECT_FALSE(s.is_mla());
  EXPECT_FALSE(s.is_moe());
  EXPECT_EQ(s.quantization.method, QuantMethod::kNone);
}

TEST(ModelSpecConfig, R1DistillLlama8BReadsLlama3RopeScaling) {
  ModelSpec s = parse_ok(fixture("deepseek-r1-distill-llama-8b.json"));
  EXPECT_EQ(s.architecture, Architecture::kLlama);
  EXPECT_EQ(s.head_dim, 128);
  EXPECT_EQ(s.num_key_value_heads, 8);
  EXPECT_FALSE(s.attention_bias);
  EXPECT_DOUBLE_EQ(s.rope_theta, 500000.0);
  EXPECT_EQ(s.rope_scaling.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(s.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(s.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(s.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(s.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(s.eos_token_ids, std::vector<int64_t>{128001});
}

TEST(ModelSpecConfig, DeepSeekV3ReadsMlaMoeYarnAndFp8) {
  ModelSpec s = parse_ok(fixture("deepseek-v3.json"));
  EXPECT_EQ(s.architecture, Architecture::kDeepseekV3);
  EXPECT_EQ(s.hidden_size, 7168);
  EXPECT_EQ(s.num_hidden_layers, 61);
  EXPECT_EQ(s.num_attention_heads, 128);
  EXPECT_EQ(s.head_dim, 192) << "MLA head_dim is qk_nope + qk_rope";
  ASSERT_TRUE(s.is_mla());
  EXPECT_EQ(s.mla->q_lora_rank, 1536);
  EXPECT_EQ(s.mla->kv_lora_rank, 512);
  EXPECT_EQ(s.mla->qk_nope_head_dim, 128);
  EXPECT_EQ(s.mla->qk_rope_head_dim, 64);
  EXPECT_EQ(s.mla->v_head_dim, 128);
  ASSERT_TRUE(s.is_moe());
  EXPECT_EQ(s.moe->n_routed_experts, 256);
  EXPECT_EQ(s.moe->n_shared_experts, 1);
  EXPECT_EQ(s.moe->num_experts_per_tok, 8);
  EXPECT_EQ(s.moe->moe_intermediate_size, 2048);
  EXPECT_EQ(s.moe->first_k_dense_replace, 3);
  EXPECT_EQ(s.moe->n_group, 8);
  EXPECT_EQ(s.moe->topk_group, 4);
  EXPECT_EQ(s.moe->topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(s.moe->scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(s.moe->norm_topk_prob);
  EXPECT_DOUBLE_EQ(s.moe->routed_scaling_factor, 2.5);
  EXPECT_EQ(s.num_nextn_predict_layers, 1);
  EXPECT_FALSE(s.is_moe_layer(2));
  EXPECT_TRUE(s.is_moe_layer(3));
  EXPECT_TRUE(s.is_moe_layer(60));
  EXPECT_EQ(s.rope_scaling.type, RopeType::kYarn);
  EXPECT_DOUBLE_EQ(s.rope_scaling.factor, 40.0);
  EXPECT_EQ(s.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(s.rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(s.rope_scaling.beta_slow, 1.0);
  EXPECT_EQ(s.rope_scaling.mscale, 1.0);
  EXPECT_EQ(s.rope_scaling.mscale_all_dim, 1.0);
  EXPECT_EQ(s.quantization.method, QuantMethod::kFp8);
  EXPECT_EQ(s.quantization.fmt, "e4m3");
  EXPECT_EQ(s.quantization.block_rows, 128);
  EXPECT_EQ(s.quantization.block_cols, 128);
  EXPECT_EQ(s.quantization.activation_scheme, "dynamic");
  EXPECT_EQ(s.bos_token_ids, std::vector<int64_t>{0});
  EXPECT_EQ(s.eos_token_ids, std::vector<int64_t>{1});
}

TEST(ModelSpecConfig, DeepSeekV2LiteHasNoQueryCompressionAndGreedySoftmaxRouting) {
  ModelSpec s = parse_ok(fixture("deepseek-v2-lite.json"));
  EXPECT_EQ(s.architecture, Architecture::kDeepseekV2);
  ASSERT_TRUE(s.is_mla());
  EXPECT_EQ(s.mla->q_lora_rank, 0) << "q_lora_rank: null";
  ASSERT_TRUE(s.is_moe());
  EXPECT_EQ(s.moe->n_routed_experts, 64);
  EXPECT_EQ(s.moe->n_shared_experts, 2);
  EXPECT_EQ(s.moe->num_experts_per_tok, 6);
  EXPECT_EQ(s.moe->first_k_dense_replace, 1);
  EXPECT_EQ(s.moe->topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(s.moe->scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(s.moe->norm_topk_prob);
  EXPECT_EQ(s.rope_scaling.mscale, 0.707);
  EXPECT_EQ(s.rope_scaling.mscale_all_dim, 0.707);
  EXPECT_EQ(s.num_nextn_predict_layers, 0);
  EXPECT_EQ(s.quantization.method, QuantMethod::kNone);
}

TEST(ModelSpecConfig, Transformers5RopeParametersReadTheSameAsRopeScaling) {
  ModelSpec old_style = parse_ok(fixture("deepseek-v2-lite.json"));
  ModelSpec new_style = parse_ok(fixture("deepseek-v2-lite-transformers5.json"));
  EXPECT_EQ(model_spec_to_hf_config(old_style), model_spec_to_hf_config(new_style));
  EXPECT_EQ(new_style.head_dim, 192) << "transformers 5 writes head_dim = qk_rope_head_dim; MLA ignores it";
}

TEST(ModelSpecConfig, RopeParametersCarryRopeTheta) {
  json j = fixture("deepseek-r1-distill-llama-8b.json");
  json rp = j["rope_scaling"];
  rp["rope_theta"] = 250000.0;
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rp;
  ModelSpec s = parse_ok(j);
  EXPECT_DOUBLE_EQ(s.rope_theta, 250000.0);
  EXPECT_EQ(s.rope_scaling.type, RopeType::kLlama3);

  json plain = fixture("deepseek-r1-distill-qwen-1.5b.json");
  plain.erase("rope_theta");
  plain["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  EXPECT_DOUBLE_EQ(parse_ok(plain).rope_theta, 1000000.0);
}

TEST(ModelSpecConfig, ReadsEveryRopeType) {
  json j = fixture("deepseek-r1-distill-qwen-1.5b.json");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(parse_ok(j).rope_scaling.type, RopeType::kLinear);
  j["rope_scaling"] = {
      {"rope_type", "dynamic"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  ModelSpec d = parse_ok(j);
  EXPECT_EQ(d.rope_scaling.type, RopeType::kDynamic);
  EXPECT_EQ(d.rope_scaling.original_max_position_embeddings, 32768);
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"attention_factor", 1.2}};
  ModelSpec y = parse_ok(j);
  EXPECT_EQ(y.rope_scaling.type, RopeType::kYarn);
  EXPECT_EQ(y.rope_scaling.attention_factor, 1.2);
  EXPECT_FALSE(y.rope_scaling.mscale.has_value());
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(parse_ok(j).rope_scaling.type, RopeType::kDefault);
}

TEST(ModelSpecConfig, TokenIdsMayBeAList) {
  json j = fixture("deepseek-r1-distill-llama-8b.json");
  j["eos_token_id"] = {128001, 128008, 128009};
  EXPECT_EQ(parse_ok(j).eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  j["bos_token_id"] = nullptr;
  EXPECT_TRUE(parse_ok(j).bos_token_ids.empty());
}

TEST(ModelSpecConfig, DtypeKeyOfTransformers5WinsOverTorchDtype) {
  json j = fixture("deepseek-r1-distill-qwen-1.5b.json");
  j["dtype"] = "float32";
  EXPECT_EQ(parse_ok(j).torch_dtype, DType::kF32);
  j.erase("dtype");
  j["torch_dtype"] = "float16";
  EXPECT_EQ(parse_ok(j).torch_dtype, DType::kF16);
  j["torch_dtype"] = "int8";
  EXPECT_NE(parse_error(j).find("torch_dtype"), std::string::npos);
}

TEST(ModelSpecConfig, ExplicitHeadDimWinsForGqaModels) {
  json j = fixture("deepseek-r1-distill-qwen-1.5b.json");
  j["head_dim"] = 64;
  EXPECT_EQ(parse_ok(j).head_dim, 64);
}

TEST(ModelSpecConfig, IntegerValuedFloatsAreIntegers) {
  json j = fixture("deepseek-r1-distill-qwen-1.5b.json");
  j["hidden_size"] = 1536.0;
  EXPECT_EQ(parse_ok(j).hidden_size, 1536);
  j["hidden_size"] = 1536.5;
  EXPECT_NE(parse_error(j).find("hidden_size"), std::string::npos);
}

TEST(ModelSpecConfig, EveryFixtureRoundTripsThroughHfConfig) {
  for (const char* name : {"deepseek-r1-distill-qwen-1.5b.json", "deepseek-r1-distill-qwen-7b.json",
                           "deepseek-r1-distill-llama-8b.json", "deepseek-v2-lite.json", "deepseek-v3.json",
                           "deepseek-v2-lite-transformers5.json"}) {
    SCOPED_TRACE(name);
    ModelSpec s = parse_ok(fixture(name));
    json written = model_spec_to_hf_config(s);
    ModelSpec again = parse_ok(written);
    EXPECT_EQ(model_spec_to_hf_config(again), written);
  }
}

TEST(ModelSpecConfig, UnsupportedArchitectureListsTheSupportedOnes) {
  json j = fixture("deepseek-r1-distill-qwen-1.5b.json");
  j["architectures"] = {"MistralForCausalLM"};
  auto r = parse_model_spec(j.dump(), "model/config.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("model/config.json"), std::string::npos) << m;
  EXPECT_NE(m.find("MistralForCausalLM"), std::string::npos) << m;
  for (const char* a :
       {"Qwen2ForCausalLM", "LlamaForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"}) {
    EXPECT_NE(m.find(a), std::string::npos) << m;
  }
}

TEST(ModelSpecConfig, ModelTypeStandsInForMissingArchitectures) {
  json j = fixture("deepseek-v3.json");
  j.erase("architectures");
  EXPECT_EQ(parse_ok(j).architecture, Architecture::kDeepseekV3);
  j.erase("model_type");
  EXPECT_NE(parse_error(j).find("architectures"), std::string::npos);
}

// One case per rule: the edit applied to a valid config, and the field the error must name.
struct BadField {
  const char* fixture;
  const char* key;
  json value;
  const char* named;
};

TEST(ModelSpecConfig, BadValuesGiveErrorsNamingTheField) {
  const BadField cases[] = {
      {"deepseek-r1-distill-qwen-1.5b.json", "hidden_size", "1536", "hidden_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "hidden_size", -1536, "hidden_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "hidden_size", 1 << 20, "hidden_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "hidden_size", nullptr, "hidden_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "hidden_size", 1537, "num_attention_heads"},
      {"deepseek-r1-distill-qwen-1.5b.json", "num_hidden_layers", 0, "num_hidden_layers"},
      {"deepseek-r1-distill-qwen-1.5b.json", "num_hidden_layers", 1025, "num_hidden_layers"},
      {"deepseek-r1-distill-qwen-1.5b.json", "num_hidden_layers", 18446744073709551615ull,
       "num_hidden_layers"},
      {"deepseek-r1-distill-qwen-1.5b.json", "num_key_value_heads", 5, "num_key_value_heads"},
      {"deepseek-r1-distill-qwen-1.5b.json", "num_key_value_heads", 24, "num_key_value_heads"},
      {"deepseek-r1-distill-qwen-1.5b.json", "vocab_size", (1 << 24) + 1, "vocab_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "vocab_size", true, "vocab_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "intermediate_size", 0, "intermediate_size"},
      {"deepseek-r1-distill-qwen-1.5b.json", "max_position_embeddings", -1, "max_position_embeddings"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rms_norm_eps", 0, "rms_norm_eps"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_theta", -10000, "rope_theta"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_theta", "big", "rope_theta"},
      {"deepseek-r1-distill-qwen-1.5b.json", "tie_word_embeddings", 1, "tie_word_embeddings"},
      {"deepseek-r1-distill-qwen-1.5b.json", "head_dim", 7, "head_dim"},
      {"deepseek-r1-distill-qwen-1.5b.json", "bos_token_id", 151936, "bos_token_id"},
      {"deepseek-r1-distill-qwen-1.5b.json", "eos_token_id", json::array({1, -2}), "eos_token_id"},
      {"deepseek-r1-distill-qwen-1.5b.json", "architectures", "Qwen2ForCausalLM", "architectures"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_scaling", json{{"type", "longrope"}, {"factor", 2}},
       "rope_scaling.rope_type"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_scaling", json{{"type", "yarn"}}, "rope_scaling.factor"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_scaling", json{{"type", "linear"}, {"factor", 0}},
       "rope_scaling.factor"},
      {"deepseek-r1-distill-qwen-1.5b.json", "rope_scaling", json::array({1, 2}), "rope_scaling"},
      {"deepseek-r1-distill-llama-8b.json", "rope_scaling",
       json{{"rope_type", "llama3"},
            {"factor", 8},
            {"low_freq_factor", 4},
            {"high_freq_factor", 1},
            {"original_max_position_embeddings", 8192}},
       "high_freq_factor"},
      {"deepseek-r1-distill-llama-8b.json", "rope_scaling", json{{"rope_type", "llama3"}, {"factor", 8}},
       "original_max_position_embeddings"},
      {"deepseek-v3.json", "kv_lora_rank", 0, "kv_lora_rank"},
      {"deepseek-v3.json", "kv_lora_rank", nullptr, "kv_lora_rank"},
      {"deepseek-v3.json", "q_lora_rank", -1, "q_lora_rank"},
      {"deepseek-v3.json", "qk_rope_head_dim", 63, "qk_rope_head_dim"},
      {"deepseek-v3.json", "qk_nope_head_dim", 1 << 30, "qk_nope_head_dim"},
      {"deepseek-v3.json", "n_routed_experts", 2048, "n_routed_experts"},
      {"deepseek-v3.json", "n_routed_experts", 250, "n_group"},
      {"deepseek-v3.json", "num_experts_per_tok", 257, "num_experts_per_tok"},
      {"deepseek-v3.json", "num_experts_per_tok", 0, "num_experts_per_tok"},
      {"deepseek-v3.json", "num_experts_per_tok", 129, "num_experts_per_tok"},
      {"deepseek-v3.json", "n_group", 3, "n_group"},
      {"deepseek-v3.json", "n_group", 256, "n_group"},
      {"deepseek-v3.json", "topk_group", 9, "topk_group"},
      {"deepseek-v3.json", "first_k_dense_replace", 62, "first_k_dense_replace"},
      {"deepseek-v3.json", "moe_layer_freq", 0, "moe_layer_freq"},
      {"deepseek-v3.json", "n_shared_experts", -1, "n_shared_experts"},
      {"deepseek-v3.json", "topk_method", "random", "topk_method"},
      {"deepseek-v3.json", "scoring_func", "relu", "scoring_func"},
      {"deepseek-v3.json", "routed_scaling_factor", -2.5, "routed_scaling_factor"},
      {"deepseek-v3.json", "norm_topk_prob", "yes", "norm_topk_prob"},
      {"deepseek-v3.json", "num_nextn_predict_layers", 100, "num_nextn_predict_layers"},
      {"deepseek-v3.json", "quantization_config", json{{"quant_method", "awq"}}, "quant_method"},
      {"deepseek-v3.json", "quantization_config", json{{"quant_method", "fp8"}}, "weight_block_size"},
      {"deepseek-v3.json", "quantization_config",
       json{{"quant_method", "fp8"}, {"fmt", "e5m2"}, {"weight_block_size", {128, 128}}}, "fmt"},
      {"deepseek-v3.json", "quantization_config",
       json{{"quant_method", "fp8"}, {"weight_block_size", {128, 0}}}, "weight_block_size[1]"},
      {"deepseek-v3.json", "quantization_config", json{{"quant_method", "fp8"}, {"weight_block_size", {128}}},
       "weight_block_size"},
      {"deepseek-v3.json", "quantization_config", "fp8", "quantization_config"},
      {"deepseek-v3.json", "rope_scaling",
       json{{"type", "yarn"}, {"factor", 40}, {"beta_fast", 1}, {"beta_slow", 32}}, "beta_fast"},
      {"deepseek-v2-lite.json", "num_nextn_predict_layers", 1, "num_nextn_predict_layers"},
  };
  for (const BadField& c : cases) {
    json j = fixture(c.fixture);
    j[c.key] = c.value;
    SCOPED_TRACE(std::string(c.fixture) + " " + c.key + "=" + c.value.dump());
    const std::string m = parse_error(j);
    EXPECT_NE(m.find(c.named), std::string::npos) << m;
    EXPECT_NE(m.find("config.json"), std::string::npos) << m;
  }
}

TEST(ModelSpecConfig, NoauxTcNeedsTwoExpertsPerGroup) {
  json j = fixture("deepseek-v3.json");
  j["n_routed_experts"] = 8;
  j["n_group"] = 8;
  j["topk_group"] = 4;
  j["num_experts_per_tok"] = 2;
  EXPECT_NE(parse_error(j).find("n_group"), std::string::npos);
  j["n_group"] = 4;
  j["topk_group"] = 2;
  EXPECT_EQ(parse_ok(j).moe->n_group, 4);
}

TEST(ModelSpecConfig, MalformedDocumentsAreRejected) {
  EXPECT_FALSE(parse_model_spec("").is_ok());
  EXPECT_FALSE(parse_model_spec("{").is_ok());
  EXPECT_FALSE(parse_model_spec("[1,2]").is_ok());
  EXPECT_FALSE(parse_model_spec("{\"architectures\": [\"\xff\"]}").is_ok()) << "invalid UTF-8";
  std::string deep(10000, '[');
  EXPECT_FALSE(parse_model_spec(deep).is_ok());
  std::string big = "{\"pad\": \"" + std::string(2 << 20, 'x') + "\"}";
  EXPECT_FALSE(parse_model_spec(big).is_ok());
}

TEST(ModelSpecConfig, LoadNamesAMissingFile) {
  auto r = load_model_spec("/nonexistent/config.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/config.json"), std::string::npos);
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(ModelSpecConfig, RopeInterleaveDefaultsByFamilyAndCanBeOverridden) {
  auto read = [](const std::string& name) {
    auto s = load_model_spec(std::string(HEARTH_FIXTURES_DIR) + "/" + name);
    EXPECT_TRUE(s.is_ok()) << name << ": " << s.status().to_string();
    return s.is_ok() ? s->rope_interleave : false;
  };
  EXPECT_FALSE(read("configs/deepseek-r1-distill-qwen-1.5b.json"));
  EXPECT_FALSE(read("configs/deepseek-r1-distill-llama-8b.json"));
  EXPECT_TRUE(read("configs/deepseek-v3.json"));  // no key: DeepSeek checkpoints are interleaved
  EXPECT_TRUE(read("configs/deepseek-v2-lite.json"));
  EXPECT_TRUE(read("engine/deepseek_v3/config.json"));  // transformers 5 writes the key

  std::string cfg = R"({"architectures":["DeepseekV3ForCausalLM"],"hidden_size":64,"num_hidden_layers":2,
    "num_attention_heads":4,"intermediate_size":128,"vocab_size":1024,"max_position_embeddings":512,
    "kv_lora_rank":32,"qk_nope_head_dim":16,"qk_rope_head_dim":8,"v_head_dim":16,"q_lora_rank":32,
    "n_routed_experts":8,"num_experts_per_tok":2,"moe_intermediate_size":32,"n_group":4,"topk_group":2,
    "rope_interleave":false})";
  auto off = parse_model_spec(cfg);
  ASSERT_TRUE(off.is_ok()) << off.status().to_string();
  EXPECT_FALSE(off->rope_interleave);
  cfg.replace(cfg.find("false"), 5, "\"no\"");
  auto bad = parse_model_spec(cfg);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("rope_interleave"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace hearth
