// GGUF reader and writer on well-formed files: what the reader exposes and how.
#include "model/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "model/gguf_test_bytes.h"
#include "model/gguf_writer.h"
#include "model/quant.h"

namespace hearth {
namespace {

using testing::GgufBytes;
using testing::TempGguf;

std::vector<uint8_t> f32_bytes(std::vector<float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::shared_ptr<GgufFile> open_ok(TempGguf& tmp, const GgufWriter& w) {
  auto bytes = w.to_bytes();
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  auto f = tmp.open(*bytes);
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? *f : nullptr;
}

TEST(Gguf, ReadsEveryScalarMetadataType) {
  GgufWriter w;
  w.add_u8("a.u8", 200)
      .add_i8("a.i8", -100)
      .add_u16("a.u16", 60000)
      .add_i16("a.i16", -30000)
      .add_u32("a.u32", 4000000000u)
      .add_i32("a.i32", -2000000000)
      .add_u64("a.u64", 1ULL << 60)
      .add_i64("a.i64", -(1LL << 60))
      .add_f32("a.f32", 1.5f)
      .add_f64("a.f64", 0.25)
      .add_bool("a.bool", true)
      .add_string("general.architecture", "deepseek2");
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 12u);
  EXPECT_EQ(f->metadata()[0].key, "a.u8");  // file order is kept
  EXPECT_EQ(*f->get_u64("a.u8"), 200u);
  EXPECT_EQ(*f->get_i64("a.i8"), -100);
  EXPECT_EQ(*f->get_u64("a.u16"), 60000u);
  EXPECT_EQ(*f->get_i64("a.i16"), -30000);
  EXPECT_EQ(*f->get_u64("a.u32"), 4000000000u);
  EXPECT_EQ(*f->get_i64("a.i32"), -2000000000);
  EXPECT_EQ(*f->get_u64("a.u64"), 1ULL << 60);
  EXPECT_EQ(*f->get_i64("a.i64"), -(1LL << 60));
  EXPECT_EQ(*f->get_f32("a.f32"), 1.5f);
  EXPECT_EQ(*f->get_f32("a.f64"), 0.25f);
  EXPECT_TRUE(*f->get_bool("a.bool"));
  EXPECT_EQ(*f->architecture(), "deepseek2");
  EXPECT_EQ(f->find("a.f32")->type(), GgufType::kF32);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(Gguf, GetU64AcceptsAnyIntegerTypeThatFits) {
  GgufWriter w;
  w.add_i32("ctx", 4096).add_i8("neg", -1).add_u64("big", ~0ULL);
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f->get_u64("ctx"), 4096u);
  EXPECT_EQ(f->get_u64("neg").status().code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(f->get_i64("big").status().code(), ErrorCode::kOutOfRange);
}

TEST(Gguf, TypedAccessorErrorsNameTheKeyAndTypes) {
  GgufWriter w;
  w.add_u32("llama.context_length", 4096).add_string("general.name", "x");
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  auto s = f->get_string("llama.context_length");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(s.status().message().find("'llama.context_length' is u32, expected a string"), std::string::npos)
      << s.status().message();
  auto n = f->get_u64("general.name");
  EXPECT_NE(n.status().message().find("'general.name' is string"), std::string::npos);
  auto missing = f->get_bool("nope");
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope' not found"), std::string::npos);
  auto arr = f->get_array("general.name");
  EXPECT_NE(arr.status().message().find("expected an array"), std::string::npos);
}

TEST(Gguf, ArraysAreViewsWithElementAccess) {
  std::vector<std::string> toks{"a", "bc", "", "\xE4\xBD\xA0"};
  std::vector<int32_t> types{1, 2, 3, 6};
  std::vector<float> scores{0.5f, -1.0f, 2.0f, 3.0f};
  GgufWriter w;
  w.add_string_array("t.tokens", toks).add_i32_array("t.types", types).add_f32_array("t.scores", scores);
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  auto tokens = f->get_array("t.tokens", GgufType::kString);
  ASSERT_TRUE(tokens.is_ok());
  EXPECT_EQ(tokens->size(), 4u);
  EXPECT_EQ(tokens->element_type(), GgufType::kString);
  ASSERT_EQ(tokens->strings().size(), 4u);
  EXPECT_EQ(tokens->strings()[3], "\xE4\xBD\xA0");
  EXPECT_EQ(*tokens->element(1).as_string(), "bc");
  // The views point into the file's bytes: no copies of token arrays.
  const auto* lo = reinterpret_cast<const char*>(f->bytes().data());
  EXPECT_GE(tokens->strings()[1].data(), lo);
  EXPECT_LT(tokens->strings()[1].data(), lo + f->bytes().size());
  auto t = f->get_array("t.types", GgufType::kI32);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(*t->element(3).as_i64(), 6);
  EXPECT_EQ(t->raw_elements().size(), 16u);
  EXPECT_EQ(*f->get_array("t.scores")->element(1).as_f64(), -1.0);
  auto wrong = f->get_array("t.types", GgufType::kString);
  EXPECT_NE(wrong.status().message().find("'t.types' is an array of i32, expected an array of string"),
            std::string::npos)
      << wrong.status().message();
}

TEST(Gguf, NestedArraysAreReadable) {
  // [[1, 2], [3]] as an array of arrays of u32.
  GgufBytes e;
  e.u32(static_cast<uint32_t>(GgufType::kArray)).u64(2);
  e.u32(static_cast<uint32_t>(GgufType::kU32)).u64(2).u32(1).u32(2);
  e.u32(static_cast<uint32_t>(GgufType::kU32)).u64(1).u32(3);
  GgufWriter w;
  w.add_raw("nested", static_cast<uint32_t>(GgufType::kArray), e.b);
  w.add_string_array("after", std::vector<std::string>{"x"});
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  auto outer = f->get_array("nested", GgufType::kArray);
  ASSERT_TRUE(outer.is_ok());
  ASSERT_EQ(outer->size(), 2u);
  EXPECT_EQ(outer->element(0).size(), 2u);
  EXPECT_EQ(*outer->element(0).element(1).as_u64(), 2u);
  EXPECT_EQ(*outer->element(1).element(0).as_u64(), 3u);
  EXPECT_EQ(outer->describe(), "array<array>[2] [array<u32>[2] [1, 2], array<u32>[1] [3]]");
  EXPECT_EQ(f->get_array("after")->strings()[0], "x");
}

TEST(Gguf, TensorShapesArePyTorchOrderAndDataIsInsideTheFile) {
  std::vector<float> a(2 * 3);
  std::iota(a.begin(), a.end(), 0.0f);
  std::vector<float> b(64);
  std::iota(b.begin(), b.end(), 100.0f);
  auto q = quantize(DType::kQ8_0, b);
  ASSERT_TRUE(q.is_ok());
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_tensor("a", DType::kF32, {2, 3}, f32_bytes(a));
  w.add_tensor("b.q8", DType::kQ8_0, {2, 32}, *q);
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorView* ta = f->find_tensor("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(ta->dtype, DType::kF32);
  EXPECT_EQ(ta->data.size(), 24u);
  EXPECT_EQ(ta->file, tmp.path());
  EXPECT_EQ(ta->file_offset % 32, 0u);
  EXPECT_EQ(ta->file_offset, f->data_offset());
  float v[6];
  std::memcpy(v, ta->data.data(), 24);
  EXPECT_EQ(v[5], 5.0f);
  const TensorView* tb = f->find_tensor("b.q8");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->shape, (std::vector<uint64_t>{2, 32}));
  EXPECT_EQ(tb->data.size(), 2u * 34);
  EXPECT_EQ(f->ggml_type(1), 8u);
  EXPECT_EQ(tb->file_offset, f->data_offset() + 32);  // 24 bytes padded to 32
  std::vector<float> back(64);
  ASSERT_TRUE(dequantize(tb->dtype, tb->data, 64, back.data()).is_ok());
  EXPECT_NEAR(back[63], 163.0f, 1.0f);
  EXPECT_EQ(f->find_tensor("c"), nullptr);
}

TEST(Gguf, GgmlDimsAreStoredInnermostFirst) {
  GgufWriter w;
  w.add_tensor("m", DType::kF32, {3, 2}, std::vector<uint8_t>(24));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.is_ok());
  // header (24) + name (8 + 1) + n_dims (4) + dims: ne[0] = 2 (innermost), ne[1] = 3.
  uint64_t ne0, ne1;
  std::memcpy(&ne0, bytes->data() + 24 + 9 + 4, 8);
  std::memcpy(&ne1, bytes->data() + 24 + 9 + 12, 8);
  EXPECT_EQ(ne0, 2u);
  EXPECT_EQ(ne1, 3u);
}

TEST(Gguf, CustomAlignmentIsWrittenAndHonoured) {
  GgufWriter w(64);
  w.add_tensor("a", DType::kF32, {3}, std::vector<uint8_t>(12));
  w.add_tensor("b", DType::kF32, {3}, std::vector<uint8_t>(12));
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(*f->get_u64("general.alignment"), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("b")->file_offset - f->find_tensor("a")->file_offset, 64u);
}

TEST(Gguf, Version2IsAccepted) {
  GgufBytes g;
  g.header(0, 1, /*version=*/2).kv_string("general.architecture", "llama");
  TempGguf tmp;
  auto f = tmp.open(g.b);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->version(), 2u);
}

TEST(Gguf, HeaderOnlyFileWithoutPaddingIsAccepted) {
  GgufBytes g;
  g.header(0, 1).kv_u32("x", 1);  // 24 + 8 + 1 + 4 + 4 bytes: not a multiple of 32
  TempGguf tmp;
  auto f = tmp.open(g.b);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_TRUE((*f)->tensors().empty());
}

TEST(Gguf, OpenMemoryMatchesOpen) {
  GgufWriter w;
  w.add_string("general.architecture", "qwen2")
      .add_tensor("x", DType::kF16, {4}, std::vector<uint8_t>(8, 0x3C));
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.is_ok());
  auto m = GgufFile::open_memory(*bytes, "mem.gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ((*m)->path(), "mem.gguf");
  EXPECT_EQ(*(*m)->architecture(), "qwen2");
  EXPECT_EQ((*m)->tensors()[0].file, "mem.gguf");
  EXPECT_EQ((*m)->tensors()[0].data[1], 0x3C);
}

TEST(Gguf, DescribeRendersValuesForInspect) {
  GgufWriter w;
  w.add_string("s", "a\"b\n").add_bool("b", false).add_i32_array("arr", std::vector<int32_t>{1, 2, 3});
  TempGguf tmp;
  auto f = open_ok(tmp, w);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->find("s")->describe(), "\"a\\\"b\\n\"");
  EXPECT_EQ(f->find("b")->describe(), "false");
  EXPECT_EQ(f->find("arr")->describe(2), "array<i32>[3] [1, 2, ...]");
}

TEST(Gguf, GgmlTypeTableMatchesGgml) {
  EXPECT_EQ(dtype_from_ggml_type(0), DType::kF32);
  EXPECT_EQ(dtype_from_ggml_type(1), DType::kF16);
  EXPECT_EQ(dtype_from_ggml_type(2), DType::kQ4_0);
  EXPECT_EQ(dtype_from_ggml_type(3), DType::kQ4_1);
  EXPECT_EQ(dtype_from_ggml_type(6), DType::kQ5_0);
  EXPECT_EQ(dtype_from_ggml_type(7), DType::kQ5_1);
  EXPECT_EQ(dtype_from_ggml_type(8), DType::kQ8_0);
  EXPECT_EQ(dtype_from_ggml_type(10), DType::kQ2_K);
  EXPECT_EQ(dtype_from_ggml_type(11), DType::kQ3_K);
  EXPECT_EQ(dtype_from_ggml_type(12), DType::kQ4_K);
  EXPECT_EQ(dtype_from_ggml_type(13), DType::kQ5_K);
  EXPECT_EQ(dtype_from_ggml_type(14), DType::kQ6_K);
  EXPECT_EQ(dtype_from_ggml_type(24), DType::kI8);
  EXPECT_EQ(dtype_from_ggml_type(25), DType::kI16);
  EXPECT_EQ(dtype_from_ggml_type(26), DType::kI32);
  EXPECT_EQ(dtype_from_ggml_type(27), DType::kI64);
  EXPECT_EQ(dtype_from_ggml_type(28), DType::kF64);
  EXPECT_EQ(dtype_from_ggml_type(30), DType::kBF16);
  EXPECT_FALSE(dtype_from_ggml_type(9).has_value());   // Q8_1
  EXPECT_FALSE(dtype_from_ggml_type(15).has_value());  // Q8_K
  EXPECT_FALSE(dtype_from_ggml_type(4).has_value());   // removed
  EXPECT_EQ(ggml_type_name(16), "IQ2_XXS");
  EXPECT_EQ(ggml_type_from_dtype(DType::kBF16), 30u);
  EXPECT_FALSE(ggml_type_from_dtype(DType::kF8_E4M3).has_value());
}

TEST(GgufWriter, ReportsMisuseAtWriteTime) {
  {
    GgufWriter w;
    w.add_u32("k", 1).add_u32("k", 2);
    EXPECT_NE(w.to_bytes().status().message().find("duplicate metadata key 'k'"), std::string::npos);
  }
  {
    GgufWriter w;
    w.add_tensor("t", DType::kF32, {4}, std::vector<uint8_t>(15));
    EXPECT_NE(w.to_bytes().status().message().find("needs 16 bytes, got 15"), std::string::npos);
  }
  {
    GgufWriter w;
    w.add_tensor("t", DType::kQ4_0, {31}, std::vector<uint8_t>(18));
    EXPECT_FALSE(w.to_bytes().is_ok());
  }
  {
    GgufWriter w(48);
    EXPECT_FALSE(w.to_bytes().is_ok());
  }
}

TEST(GgufWriter, StreamsTensorsFromFillCallbacks) {
  GgufWriter w;
  w.add_tensor("t", DType::kBF16, {2, 8}, [](std::span<uint8_t> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i);
    return Status::ok();
  });
  TempGguf tmp;
  ASSERT_TRUE(w.write(tmp.path()).is_ok());
  auto f = GgufFile::open(tmp.path());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  const TensorView* t = (*f)->find_tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->data.size(), 32u);
  EXPECT_EQ(t->data[31], 31);
}

}  // namespace
}  // namespace hearth
