// Checkpoint::open on GGUF files: the ModelSpec comes from llama.cpp's metadata keys, tensors are
// checked under llama.cpp's names (routed experts stacked per layer), and errors name file and tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "model/arch_tensors.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class CheckpointGgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::path(::testing::TempDir()) /
             ("hearth_gguf_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
              ".gguf"))
                .string();
  }
  void TearDown() override { fs::remove(path_); }

  // Zero-filled tensor: norms and biases F32, matrices F16 (Q8_0 for `q8_name`).
  static void add_zero(GgufWriter& w, const std::string& name, std::vector<uint64_t> shape, DType dtype) {
    w.add_tensor(name, dtype, std::move(shape), [](std::span<uint8_t> out) {
      std::fill(out.begin(), out.end(), 0);
      return Status::ok();
    });
  }

  // A llama.cpp-style qwen2 file: hidden 64, 2 layers, 4 heads / 2 KV heads, ffn 128, vocab 256.
  void write_qwen2(const std::function<bool(const std::string&)>& keep = nullptr,
                   const std::function<void(GgufWriter&)>& extra = nullptr) {
    GgufWriter w;
    w.add_string("general.architecture", "qwen2");
    w.add_string("general.name", "tiny qwen2");
    w.add_u32("qwen2.block_count", 2);
    w.add_u32("qwen2.context_length", 32768);
    w.add_u32("qwen2.embedding_length", 64);
    w.add_u32("qwen2.feed_forward_length", 128);
    w.add_u32("qwen2.attention.head_count", 4);
    w.add_u32("qwen2.attention.head_count_kv", 2);
    w.add_f32("qwen2.rope.freq_base", 1000000.0f);
    w.add_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    std::vector<std::string> tokens(256, "t");
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_string("tokenizer.ggml.model", "gpt2");
    if (extra) extra(w);
    auto t = [&](const std::string& name, std::vector<uint64_t> shape, DType dtype) {
      if (!keep || keep(name)) add_zero(w, name, std::move(shape), dtype);
    };
    t("token_embd.weight", {256, 64}, DType::kQ8_0);
    for (int l = 0; l < 2; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      t(b + "attn_norm.weight", {64}, DType::kF32);
      t(b + "attn_q.weight", {64, 64}, DType::kQ8_0);
      t(b + "attn_q.bias", {64}, DType::kF32);
      t(b + "attn_k.weight", {32, 64}, DType::kQ8_0);
      t(b + "attn_k.bias", {32}, DType::kF32);
      t(b + "attn_v.weight", {32, 64}, DType::kF16);
      t(b + "attn_v.bias", {32}, DType::kF32);
      t(b + "attn_output.weight", {64, 64}, DType::kQ8_0);
      t(b + "ffn_norm.weight", {64}, DType::kF32);
      t(b + "ffn_gate.weight", {128, 64}, DType::kQ8_0);
      t(b + "ffn_up.weight", {128, 64}, DType::kQ8_0);
      t(b + "ffn_down.weight", {64, 128}, DType::kQ8_0);
    }
    t("output_norm.weight", {64}, DType::kF32);
    t("output.weight", {256, 64}, DType::kQ8_0);
    Status s = w.write(path_);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  // A deepseek2 file shaped like DeepSeek-V3 at toy widths: hidden 64, 2 layers (dense, MoE with 8
  // experts in 4 groups), q_lora 32, kv_lora 32, qk_nope 16, qk_rope 8, v_head 16, sigmoid gating.
  void write_deepseek(bool split_kv_b, const std::function<void(GgufWriter&)>& extra = nullptr,
                      uint64_t stacked_experts = 8) {
    GgufWriter w;
    w.add_string("general.architecture", "deepseek2");
    w.add_u32("deepseek2.block_count", 2);
    w.add_u32("deepseek2.context_length", 163840);
    w.add_u32("deepseek2.embedding_length", 64);
    w.add_u32("deepseek2.feed_forward_length", 128);
    w.add_u32("deepseek2.attention.head_count", 4);
    w.add_u32("deepseek2.attention.head_count_kv", 4);
    w.add_f32("deepseek2.rope.freq_base", 10000.0f);
    w.add_f32("deepseek2.attention.layer_norm_rms_epsilon", 1e-6f);
    w.add_u32("deepseek2.vocab_size", 256);
    w.add_u32("deepseek2.attention.q_lora_rank", 32);
    w.add_u32("deepseek2.attention.kv_lora_rank", 32);
    w.add_u32("deepseek2.attention.key_length", 24);
    w.add_u32("deepseek2.attention.value_length", 16);
    w.add_u32("deepseek2.rope.dimension_count", 8);
    w.add_u32("deepseek2.leading_dense_block_count", 1);
    w.add_u32("deepseek2.expert_count", 8);
    w.add_u32("deepseek2.expert_used_count", 2);
    w.add_u32("deepseek2.expert_shared_count", 1);
    w.add_u32("deepseek2.expert_feed_forward_length", 32);
    w.add_u32("deepseek2.expert_group_count", 4);
    w.add_u32("deepseek2.expert_group_used_count", 2);
    w.add_f32("deepseek2.expert_weights_scale", 2.5f);
    w.add_bool("deepseek2.expert_weights_norm", true);
    w.add_u32("deepseek2.expert_gating_func", 2);
    w.add_string("deepseek2.rope.scaling.type", "yarn");
    w.add_f32("deepseek2.rope.scaling.factor", 40.0f);
    w.add_u32("deepseek2.rope.scaling.original_context_length", 4096);
    w.add_f32("deepseek2.rope.scaling.yarn_log_multiplier", 0.1f);
    if (extra) extra(w);
    const DType f16 = DType::kF16;
    add_zero(w, "token_embd.weight", {256, 64}, f16);
    for (int l = 0; l < 2; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      add_zero(w, b + "attn_norm.weight", {64}, DType::kF32);
      add_zero(w, b + "attn_q_a.weight", {32, 64}, f16);
      add_zero(w, b + "attn_q_a_norm.weight", {32}, DType::kF32);
      add_zero(w, b + "attn_q_b.weight", {96, 32}, f16);
      add_zero(w, b + "attn_kv_a_mqa.weight", {40, 64}, f16);
      add_zero(w, b + "attn_kv_a_norm.weight", {32}, DType::kF32);
      if (split_kv_b) {
        add_zero(w, b + "attn_k_b.weight", {4, 32, 16}, f16);
        add_zero(w, b + "attn_v_b.weight", {4, 16, 32}, f16);
      } else {
        add_zero(w, b + "attn_kv_b.weight", {128, 32}, f16);
      }
      add_zero(w, b + "attn_output.weight", {64, 64}, f16);
      add_zero(w, b + "ffn_norm.weight", {64}, DType::kF32);
      if (l == 0) {
        add_zero(w, b + "ffn_gate.weight", {128, 64}, f16);
        add_zero(w, b + "ffn_up.weight", {128, 64}, f16);
        add_zero(w, b + "ffn_down.weight", {64, 128}, f16);
      } else {
        add_zero(w, b + "ffn_gate_inp.weight", {8, 64}, DType::kF32);
        add_zero(w, b + "exp_probs_b.bias", {8}, DType::kF32);
        add_zero(w, b + "ffn_gate_exps.weight", {stacked_experts, 32, 64}, f16);
        add_zero(w, b + "ffn_up_exps.weight", {8, 32, 64}, f16);
        add_zero(w, b + "ffn_down_exps.weight", {8, 64, 32}, f16);
        add_zero(w, b + "ffn_gate_shexp.weight", {32, 64}, f16);
        add_zero(w, b + "ffn_up_shexp.weight", {32, 64}, f16);
        add_zero(w, b + "ffn_down_shexp.weight", {64, 32}, f16);
      }
    }
    add_zero(w, "output_norm.weight", {64}, DType::kF32);
    add_zero(w, "output.weight", {256, 64}, f16);
    Status s = w.write(path_);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  std::string open_error() {
    auto r = Checkpoint::open(path_);
    EXPECT_FALSE(r.is_ok()) << "opened";
    return r.is_ok() ? std::string() : r.status().message();
  }

  std::string path_;
};

TEST(GgufTensorNames, MapHuggingFaceNamesToLlamaCppNames) {
  EXPECT_EQ(gguf_tensor_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(gguf_tensor_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(gguf_tensor_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.12.self_attn.q_proj.bias"), "blk.12.attn_q.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.self_attn.kv_a_proj_with_mqa.weight"),
            "blk.3.attn_kv_a_mqa.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.mlp.gate.e_score_correction_bias"), "blk.3.exp_probs_b.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.mlp.experts.255.down_proj.weight"),
            "blk.3.ffn_down_exps.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.3.mlp.shared_experts.up_proj.weight"),
            "blk.3.ffn_up_shexp.weight");
  EXPECT_EQ(gguf_tensor_name("model.layers.61.eh_proj.weight"), "");
  EXPECT_EQ(gguf_tensor_name("model.layers..x"), "");
}

TEST_F(CheckpointGgufTest, Qwen2FileOpensWithItsSpecFromMetadata) {
  write_qwen2();
  auto r = Checkpoint::open(path_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Checkpoint& c = **r;
  EXPECT_EQ(c.format(), CheckpointFormat::kGguf);
  const ModelSpec& s = c.spec();
  EXPECT_EQ(s.architecture, Architecture::kQwen2);
  EXPECT_EQ(s.hidden_size, 64);
  EXPECT_EQ(s.num_hidden_layers, 2);
  EXPECT_EQ(s.num_attention_heads, 4);
  EXPECT_EQ(s.num_key_value_heads, 2);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_EQ(s.intermediate_size, 128);
  EXPECT_EQ(s.vocab_size, 256);
  EXPECT_EQ(s.max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(s.rope_theta, 1000000.0);
  EXPECT_FALSE(s.tie_word_embeddings);
  EXPECT_EQ(s.bos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(s.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_TRUE(c.unexpected_tensors().empty());
  ASSERT_NE(c.find("model.layers.1.self_attn.k_proj.bias"), nullptr);
  EXPECT_EQ(c.find("model.layers.1.self_attn.k_proj.bias")->name, "blk.1.attn_k.bias");
  EXPECT_EQ(c.tokenizer_files(), std::vector<std::string>{"tokenizer.ggml (embedded)"});
  EXPECT_EQ(c.dtype_stats().at(DType::kQ8_0).tensors, 2u + 2 * 6);
  EXPECT_EQ(c.info().at("general.name").find("tiny qwen2") != std::string::npos, true);
}

TEST_F(CheckpointGgufTest, MissingOutputMeansTiedEmbeddings) {
  write_qwen2([](const std::string& n) { return n != "output.weight"; });
  auto r = Checkpoint::open(path_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE((*r)->spec().tie_word_embeddings);
}

TEST_F(CheckpointGgufTest, MissingTensorNamesFileAndBothNames) {
  write_qwen2([](const std::string& n) { return n != "blk.1.ffn_up.weight"; });
  const std::string m = open_error();
  EXPECT_NE(m.find(path_), std::string::npos) << m;
  EXPECT_NE(m.find("blk.1.ffn_up.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << m;
}

TEST_F(CheckpointGgufTest, MetadataErrorsNameTheKey) {
  write_qwen2(nullptr, [](GgufWriter& w) { w.add_string("qwen2.rope.scaling.type", "longrope"); });
  EXPECT_NE(open_error().find("qwen2.rope.scaling.type"), std::string::npos);
  fs::remove(path_);
  GgufWriter w;
  w.add_string("general.architecture", "gpt2");
  ASSERT_TRUE(w.write(path_).is_ok());
  EXPECT_NE(open_error().find("deepseek2"), std::string::npos);
  GgufWriter no_layers;
  no_layers.add_string("general.architecture", "llama");
  ASSERT_TRUE(no_layers.write(path_).is_ok());
  EXPECT_NE(open_error().find("llama.embedding_length"), std::string::npos);
}

TEST_F(CheckpointGgufTest, DeepseekV3FileReadsMlaMoeAndYarn) {
  write_deepseek(false);
  auto r = Checkpoint::open(path_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const ModelSpec& s = (*r)->spec();
  EXPECT_EQ(s.architecture, Architecture::kDeepseekV3);
  ASSERT_TRUE(s.is_mla());
  EXPECT_EQ(s.mla->q_lora_rank, 32);
  EXPECT_EQ(s.mla->kv_lora_rank, 32);
  EXPECT_EQ(s.mla->qk_nope_head_dim, 16);
  EXPECT_EQ(s.mla->qk_rope_head_dim, 8);
  EXPECT_EQ(s.mla->v_head_dim, 16);
  ASSERT_TRUE(s.is_moe());
  EXPECT_EQ(s.moe->n_routed_experts, 8);
  EXPECT_EQ(s.moe->num_experts_per_tok, 2);
  EXPECT_EQ(s.moe->first_k_dense_replace, 1);
  EXPECT_EQ(s.moe->n_group, 4);
  EXPECT_EQ(s.moe->topk_group, 2);
  EXPECT_EQ(s.moe->topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(s.moe->scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(s.moe->norm_topk_prob);
  EXPECT_DOUBLE_EQ(s.moe->routed_scaling_factor, 2.5);
  EXPECT_EQ(s.rope_scaling.type, RopeType::kYarn);
  EXPECT_DOUBLE_EQ(s.rope_scaling.factor, 40.0);
  EXPECT_NEAR(*s.rope_scaling.mscale_all_dim, 1.0, 1e-6);
  EXPECT_EQ(kv_cache_bytes_per_token(s), (32u + 8) * 2 * 2);
  EXPECT_TRUE((*r)->unexpected_tensors().empty());
}

TEST_F(CheckpointGgufTest, SplitKvBOfAbsorbedMlaFilesIsAccepted) {
  write_deepseek(true);
  auto r = Checkpoint::open(path_);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE((*r)->unexpected_tensors().empty());
}

TEST_F(CheckpointGgufTest, StackedExpertsOfTheWrongCountAreRejected) {
  write_deepseek(false, nullptr, 7);
  const std::string m = open_error();
  EXPECT_NE(m.find("blk.1.ffn_gate_exps.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[7, 32, 64]"), std::string::npos) << m;
  EXPECT_NE(m.find("[8, 32, 64]"), std::string::npos) << m;
}

TEST_F(CheckpointGgufTest, UnsupportedGatingFunctionIsNamed) {
  GgufWriter w;
  w.add_string("general.architecture", "deepseek2");
  w.add_u32("deepseek2.expert_gating_func", 3);
  ASSERT_TRUE(w.write(path_).is_ok());
  EXPECT_NE(open_error().find("expert_gating_func"), std::string::npos);
}

}  // namespace
}  // namespace hearth
