// Checkpoint::open on crafted checkpoints: every way a checkpoint can disagree with its config.json
// is an error naming the file and the tensor; nothing crashes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "model/arch_tensors.h"
#include "model/checkpoint.h"
#include "model/fp8_block.h"
#include "model/safetensors.h"
#include "model/synth.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Tensor {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("hearth_ckpt_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto preset = find_synth_preset("tiny");
    spec_ = preset->spec;
    spec_.vocab_size = 512;  // small files
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<Tensor> tensors_of(const ModelSpec& spec) {
    std::vector<Tensor> out;
    for (const ExpectedTensor& t : expected_tensors(spec)) {
      if (!t.optional) out.push_back({t.name, stored_dtype(spec, t), t.shape});
    }
    return out;
  }

  // Writes config.json for `spec` and model.safetensors holding `tensors` (fp8 scales are 1.0,
  // everything else zero).
  void write(const ModelSpec& spec, const std::vector<Tensor>& tensors) {
    ASSERT_TRUE(write_file((dir_ / "config.json").string(), model_spec_to_hf_config(spec).dump()).is_ok());
    std::vector<SafetensorsTensorToWrite> w;
    for (const Tensor& t : tensors) {
      const bool scale = t.name.ends_with("_scale_inv");
      w.push_back({t.name, t.dtype, t.shape, [scale](std::span<uint8_t> out) {
                     if (scale) {
                       const float one = 1.0f;
                       for (size_t i = 0; i + 4 <= out.size(); i += 4) std::memcpy(out.data() + i, &one, 4);
                     } else {
                       std::fill(out.begin(), out.end(), 0);
                     }
                     return Status::ok();
                   }});
    }
    Status s = write_safetensors((dir_ / "model.safetensors").string(), w);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  void write_with(const std::function<void(std::vector<Tensor>&)>& edit) {
    auto t = tensors_of(spec_);
    edit(t);
    write(spec_, t);
  }

  static Tensor& named(std::vector<Tensor>& v, const std::string& name) {
    for (Tensor& t : v) {
      if (t.name == name) return t;
    }
    ADD_FAILURE() << "no tensor " << name;
    return v.front();
  }

  // Opens the checkpoint expecting failure; returns the message.
  std::string open_error() {
    auto r = Checkpoint::open(dir_.string());
    EXPECT_FALSE(r.is_ok()) << "opened";
    return r.is_ok() ? std::string() : r.status().message();
  }

  fs::path dir_;
  ModelSpec spec_;
};

TEST_F(CheckpointTest, ACompleteCheckpointOpens) {
  write(spec_, tensors_of(spec_));
  auto r = Checkpoint::open(dir_.string());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->format(), CheckpointFormat::kSafetensors);
  EXPECT_EQ((*r)->tensors().size(), tensors_of(spec_).size());
  EXPECT_TRUE((*r)->unexpected_tensors().empty());
  EXPECT_NE((*r)->find("model.layers.1.mlp.experts.7.down_proj.weight"), nullptr);
  EXPECT_EQ((*r)->find("model.layers.1.mlp.experts.8.down_proj.weight"), nullptr);
  EXPECT_TRUE((*r)->tokenizer_files().empty());
}

TEST_F(CheckpointTest, OneSafetensorsFilePathOpensWithItsDirectorysConfig) {
  write(spec_, tensors_of(spec_));
  auto r = Checkpoint::open((dir_ / "model.safetensors").string());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
}

TEST_F(CheckpointTest, MissingTensorIsNamedWithTheDirectory) {
  write_with([](std::vector<Tensor>& v) {
    std::erase_if(v, [](const Tensor& t) { return t.name == "model.layers.1.mlp.experts.3.up_proj.weight"; });
  });
  const std::string m = open_error();
  EXPECT_NE(m.find("model.layers.1.mlp.experts.3.up_proj.weight"), std::string::npos) << m;
  EXPECT_NE(m.find(dir_.string()), std::string::npos) << m;
  EXPECT_NE(m.find("missing"), std::string::npos) << m;
}

TEST_F(CheckpointTest, WrongShapeNamesFileTensorAndBothShapes) {
  write_with([](std::vector<Tensor>& v) {
    named(v, "model.layers.0.self_attn.kv_b_proj.weight").shape = {96, 31};
  });
  const std::string m = open_error();
  EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("model.layers.0.self_attn.kv_b_proj.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[96, 31]"), std::string::npos) << m;
  EXPECT_NE(m.find("[128, 32]"), std::string::npos) << m;
}

TEST_F(CheckpointTest, UnusableDtypeIsNamed) {
  write_with(
      [](std::vector<Tensor>& v) { named(v, "model.layers.0.mlp.up_proj.weight").dtype = DType::kI32; });
  const std::string m = open_error();
  EXPECT_NE(m.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("I32"), std::string::npos) << m;
}

TEST_F(CheckpointTest, Fp8WeightWithoutQuantizationConfigIsRejected) {
  write_with(
      [](std::vector<Tensor>& v) { named(v, "model.layers.0.mlp.up_proj.weight").dtype = DType::kF8_E4M3; });
  const std::string m = open_error();
  EXPECT_NE(m.find("quantization_config"), std::string::npos) << m;
}

TEST_F(CheckpointTest, Fp8NormIsRejected) {
  ModelSpec fp8 = spec_;
  fp8.quantization.method = QuantMethod::kFp8;
  auto t = tensors_of(fp8);
  named(t, "model.norm.weight").dtype = DType::kF8_E4M3;
  write(fp8, t);
  const std::string m = open_error();
  EXPECT_NE(m.find("model.norm.weight"), std::string::npos) << m;
}

TEST_F(CheckpointTest, Fp8CheckpointOpensAndMissingOrMisshapenScalesAreNamed) {
  ModelSpec fp8 = spec_;
  fp8.quantization.method = QuantMethod::kFp8;
  write(fp8, tensors_of(fp8));
  ASSERT_TRUE(Checkpoint::open(dir_.string()).is_ok());

  auto no_scale = tensors_of(fp8);
  std::erase_if(no_scale,
                [](const Tensor& t) { return t.name == "model.layers.0.self_attn.o_proj.weight_scale_inv"; });
  write(fp8, no_scale);
  std::string m = open_error();
  EXPECT_NE(m.find("model.layers.0.self_attn.o_proj.weight_scale_inv"), std::string::npos) << m;

  auto bad_scale = tensors_of(fp8);
  named(bad_scale, "model.layers.0.self_attn.o_proj.weight_scale_inv").shape = {2, 1};
  write(fp8, bad_scale);
  m = open_error();
  EXPECT_NE(m.find("model.layers.0.self_attn.o_proj.weight"), std::string::npos) << m;

  auto f16_scale = tensors_of(fp8);
  named(f16_scale, "model.layers.0.self_attn.o_proj.weight_scale_inv").dtype = DType::kF16;
  write(fp8, f16_scale);
  m = open_error();
  EXPECT_NE(m.find("o_proj"), std::string::npos) << m;
}

TEST_F(CheckpointTest, Bf16WeightsMayStandInForFp8AndTheirStrayScalesAreUnexpected) {
  ModelSpec fp8 = spec_;
  fp8.quantization.method = QuantMethod::kFp8;
  auto t = tensors_of(fp8);
  named(t, "model.layers.0.mlp.up_proj.weight").dtype = DType::kBF16;
  write(fp8, t);
  auto r = Checkpoint::open(dir_.string());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->unexpected_tensors(),
            std::vector<std::string>{"model.layers.0.mlp.up_proj.weight_scale_inv"});
}

TEST_F(CheckpointTest, UnexpectedTensorsAreListedNotFatal) {
  write_with([](std::vector<Tensor>& v) {
    v.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, {4}});
    v.push_back({"lm_head.bias", DType::kF32, {512}});
  });
  auto r = Checkpoint::open(dir_.string());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->unexpected_tensors(),
            (std::vector<std::string>{"lm_head.bias", "model.layers.0.self_attn.rotary_emb.inv_freq"}));
}

TEST_F(CheckpointTest, PartialMtpLayersAreCountedAndMisshapenOnesRejected) {
  auto t = tensors_of(spec_);
  t.push_back({"model.layers.2.enorm.weight", DType::kBF16, {64}});
  write(spec_, t);
  auto r = Checkpoint::open(dir_.string());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->optional_present(), 1u);
  EXPECT_TRUE((*r)->unexpected_tensors().empty());
  t.back().shape = {65};
  write(spec_, t);
  EXPECT_NE(open_error().find("model.layers.2.enorm.weight"), std::string::npos);
}

TEST_F(CheckpointTest, MissingOrBrokenConfigIsNamed) {
  write(spec_, tensors_of(spec_));
  fs::remove(dir_ / "config.json");
  EXPECT_NE(open_error().find("config.json"), std::string::npos);
  ASSERT_TRUE(
      write_file((dir_ / "config.json").string(), "{\"architectures\": [\"GPT2LMHeadModel\"]}").is_ok());
  const std::string m = open_error();
  EXPECT_NE(m.find((dir_ / "config.json").string()), std::string::npos) << m;
  EXPECT_NE(m.find("DeepseekV3ForCausalLM"), std::string::npos) << m;
}

TEST_F(CheckpointTest, ConfigLargerThanTheWeightsFailsAtTheFirstMissingTensor) {
  write(spec_, tensors_of(spec_));
  ModelSpec huge = spec_;
  huge.num_hidden_layers = 1024;
  huge.moe->n_routed_experts = 1024;
  huge.moe->n_group = 4;
  ASSERT_TRUE(huge.validate().is_ok());
  ASSERT_TRUE(write_file((dir_ / "config.json").string(), model_spec_to_hf_config(huge).dump()).is_ok());
  // Stops at layer 1's router (8 experts in the file, 1024 in the config), long before listing the
  // three million tensors the config implies.
  const std::string m = open_error();
  EXPECT_NE(m.find("model.layers.1.mlp.gate.weight"), std::string::npos) << m;
}

TEST_F(CheckpointTest, TruncatedWeightsFileIsAnErrorNotACrash) {
  write(spec_, tensors_of(spec_));
  const fs::path f = dir_ / "model.safetensors";
  fs::resize_file(f, fs::file_size(f) / 2);
  const std::string m = open_error();
  EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
}

TEST_F(CheckpointTest, NoWeightsOrNoPathIsNamed) {
  ASSERT_TRUE(write_file((dir_ / "config.json").string(), model_spec_to_hf_config(spec_).dump()).is_ok());
  EXPECT_NE(open_error().find(dir_.string()), std::string::npos);
  auto r = Checkpoint::open((dir_ / "nope").string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(write_file((dir_ / "notes.txt").string(), "hello").is_ok());
  EXPECT_FALSE(Checkpoint::open((dir_ / "notes.txt").string()).is_ok());
}

}  // namespace
}  // namespace hearth
