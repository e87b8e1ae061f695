// One named test per untrusted-file rule of docs/formats.md "## GGUF" (RELIABILITY.md "Untrusted
// files"). Each crafts the bytes here, writes them to a temp file and expects a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/gguf.h"
#include "model/gguf_test_bytes.h"
#include "model/gguf_tokenizer.h"
#include "model/gguf_writer.h"

namespace hearth {
namespace {

using testing::GgufBytes;
using testing::TempGguf;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;
constexpr uint32_t kTypeU32 = static_cast<uint32_t>(GgufType::kU32);
constexpr uint32_t kTypeU64 = static_cast<uint32_t>(GgufType::kU64);
constexpr uint32_t kTypeString = static_cast<uint32_t>(GgufType::kString);
constexpr uint32_t kTypeArray = static_cast<uint32_t>(GgufType::kArray);
constexpr uint32_t kTypeBool = static_cast<uint32_t>(GgufType::kBool);

// Opens `bytes` from a temp file; returns the failure (or OK).
Status open_status(const std::vector<uint8_t>& bytes) {
  TempGguf tmp;
  auto f = tmp.open(bytes);
  return f.status();
}

#define EXPECT_GGUF_ERROR(bytes, expected_code, needle)                                     \
  do {                                                                                      \
    Status s_ = open_status(bytes);                                                         \
    EXPECT_EQ(s_.code(), expected_code) << s_.to_string();                                  \
    EXPECT_NE(s_.message().find(needle), std::string::npos) << "message: " << s_.message(); \
  } while (0)

// Header, one KV, one f32 tensor of `dims` at `offset`, then `data_bytes` of data.
std::vector<uint8_t> one_tensor_file(std::vector<uint64_t> dims, uint32_t type, uint64_t offset,
                                     size_t data_bytes) {
  GgufBytes g;
  g.header(1, 1).kv_string("general.architecture", "llama").tensor("w", dims, type, offset).pad_to(32);
  g.zeros(data_bytes);
  return g.b;
}

// A valid file whose last tensor ends exactly at the end of the file, so every prefix is invalid.
std::vector<uint8_t> valid_small_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama")
      .add_u32("llama.context_length", 4096)
      .add_f32("llama.rope.freq_base", 10000.0f)
      .add_bool("flag", true)
      .add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "<s>"})
      .add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 3});
  w.add_tensor("a", DType::kF32, {8}, std::vector<uint8_t>(32, 1));
  w.add_tensor("b", DType::kF16, {2, 8}, std::vector<uint8_t>(32, 2));
  return *w.to_bytes();
}

TEST(GgufHardening, ValidSmallFileOpens) {
  EXPECT_TRUE(open_status(valid_small_file()).is_ok());
}

TEST(GgufHardening, TruncatedAtEveryPrefixLengthFails) {
  const std::vector<uint8_t> full = valid_small_file();
  TempGguf tmp;
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<ptrdiff_t>(n));
    auto f = tmp.open(prefix);
    ASSERT_FALSE(f.is_ok()) << "prefix of " << n << " bytes opened";
    EXPECT_EQ(f.status().code(), ErrorCode::kCorrupt) << n << ": " << f.status().to_string();
    EXPECT_NE(f.status().message().find(tmp.path()), std::string::npos);  // names the file
  }
}

TEST(GgufHardening, BadMagicIsRejected) {
  GgufBytes g;
  g.raw("GGML").u32(3).u64(0).u64(0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "not a GGUF file");
}

TEST(GgufHardening, Version1IsRejectedWithClearError) {
  GgufBytes g;
  g.header(0, 0, 1);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kUnsupported, "GGUF version 1 is not supported");
}

TEST(GgufHardening, BigEndianFileIsRejected) {
  GgufBytes g;
  g.raw("GGUF").u32(0x03000000u).u64(0).u64(0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kUnsupported, "big-endian");
}

TEST(GgufHardening, UnknownVersionIsRejected) {
  GgufBytes g;
  g.header(0, 0, 4);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kUnsupported, "unsupported GGUF version 4");
}

TEST(GgufHardening, HugeTensorCountFailsBeforeAllocating) {
  GgufBytes g;
  g.header(1ULL << 60, 0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "tensor count 1152921504606846976 exceeds the limit");
}

TEST(GgufHardening, TensorCountBoundedByBytesLeft) {
  GgufBytes g;
  g.header(1000, 0).zeros(100);  // within the global limit, but 1000 infos need >= 32000 bytes
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "cannot fit");
}

TEST(GgufHardening, HugeMetadataCountFailsBeforeAllocating) {
  GgufBytes g;
  g.header(0, ~0ULL);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "metadata count");
  GgufBytes h;
  h.header(0, 1000).kv_u32("a", 1);
  EXPECT_GGUF_ERROR(h.b, ErrorCode::kCorrupt, "cannot fit");
}

TEST(GgufHardening, HugeArrayCountFailsBeforeAllocating) {
  GgufBytes g;  // 2^61 u64 elements: count x 8 overflows
  g.header(0, 1).str("arr").u32(kTypeArray).u32(kTypeU64).u64(1ULL << 61).u64(0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "claims 2305843009213693952 elements");
  GgufBytes s;  // a million strings need >= 8 MB
  s.header(0, 1).str("tokenizer.ggml.tokens").u32(kTypeArray).u32(kTypeString).u64(1000000).str("a");
  EXPECT_GGUF_ERROR(s.b, ErrorCode::kCorrupt, "cannot fit");
  GgufBytes n;  // a million nested arrays need >= 12 MB
  n.header(0, 1).str("n").u32(kTypeArray).u32(kTypeArray).u64(1000000).zeros(64);
  EXPECT_GGUF_ERROR(n.b, ErrorCode::kCorrupt, "cannot fit");
}

TEST(GgufHardening, StringLengthPastTheEndFails) {
  GgufBytes g;
  g.header(0, 1).str("general.name").u32(kTypeString).u64(1000).raw("short");
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "runs past the end of the file");
  GgufBytes k;
  k.header(0, 1).u64(~0ULL).raw("key").zeros(8);
  EXPECT_GGUF_ERROR(k.b, ErrorCode::kCorrupt, "metadata key #0");
}

TEST(GgufHardening, KeyLongerThanLimitFails) {
  GgufBytes g;
  g.header(0, 1).kv_u32(std::string(GgufLimits::kMaxKeyBytes + 1, 'k'), 1);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "byte limit");
}

TEST(GgufHardening, EmptyKeyFails) {
  GgufBytes g;
  g.header(0, 1).kv_u32("", 1);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "is empty");
}

TEST(GgufHardening, BadUtf8InKeyFails) {
  GgufBytes g;
  g.header(0, 1).kv_u32("general.\xC0\xAF", 1);  // overlong '/'
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "not valid UTF-8");
}

TEST(GgufHardening, BadUtf8InTensorNameFails) {
  EXPECT_GGUF_ERROR(
      [] {
        GgufBytes g;
        g.header(1, 0).tensor("blk.0.\xFF", {8}, kF32, 0).pad_to(32).zeros(32);
        return g.b;
      }(),
      ErrorCode::kCorrupt, "tensor name #0 at byte 24 is not valid UTF-8");
}

TEST(GgufHardening, UnknownValueTypeFails) {
  GgufBytes g;
  g.header(0, 1).str("x").u32(13).u32(0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "metadata key 'x' has unknown value type 13");
}

TEST(GgufHardening, UnknownArrayElementTypeFails) {
  GgufBytes g;
  g.header(0, 1).str("x").u32(kTypeArray).u32(77).u64(0);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "array of unknown value type 77");
}

TEST(GgufHardening, BoolOtherThanZeroOrOneFails) {
  GgufBytes g;
  g.header(0, 1).str("b").u32(kTypeBool).u8(2);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "bool value 2 is not 0 or 1");
  GgufBytes a;
  a.header(0, 1).str("b").u32(kTypeArray).u32(kTypeBool).u64(3).u8(0).u8(1).u8(255);
  EXPECT_GGUF_ERROR(a.b, ErrorCode::kCorrupt, "bool element 2 is 255");
}

std::vector<uint8_t> nested_arrays(int depth) {
  GgufBytes g;
  g.header(0, 1).str("deep").u32(kTypeArray);
  for (int i = 1; i < depth; ++i) g.u32(kTypeArray).u64(1);
  g.u32(kTypeU32).u64(1).u32(7);
  return g.b;
}

TEST(GgufHardening, NestedArrayDepthIsBounded) {
  EXPECT_TRUE(open_status(nested_arrays(GgufLimits::kMaxArrayDepth)).is_ok());
  EXPECT_GGUF_ERROR(nested_arrays(GgufLimits::kMaxArrayDepth + 1), ErrorCode::kCorrupt,
                    "nested deeper than 8");
  EXPECT_GGUF_ERROR(nested_arrays(100000), ErrorCode::kCorrupt, "nested deeper than 8");
}

TEST(GgufHardening, DuplicateKeyFails) {
  GgufBytes g;
  g.header(0, 3).kv_u32("a", 1).kv_u32("b", 2).kv_u32("a", 3);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "duplicate metadata key 'a'");
}

TEST(GgufHardening, DuplicateTensorNameFails) {
  GgufBytes g;
  g.header(2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad_to(32).zeros(64);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "duplicate tensor name 'w'");
}

std::vector<uint8_t> with_alignment(uint32_t type, uint64_t value) {
  GgufBytes g;
  g.header(0, 1).str("general.alignment").u32(type);
  if (type == kTypeU64) {
    g.u64(value);
  } else {
    g.u32(static_cast<uint32_t>(value));
  }
  return g.b;
}

TEST(GgufHardening, AlignmentNotPowerOfTwoFails) {
  EXPECT_GGUF_ERROR(with_alignment(kTypeU32, 48), ErrorCode::kCorrupt,
                    "general.alignment 48 is not a power of two");
}

TEST(GgufHardening, AlignmentZeroFails) {
  EXPECT_GGUF_ERROR(with_alignment(kTypeU32, 0), ErrorCode::kCorrupt, "general.alignment 0");
}

TEST(GgufHardening, AlignmentHugeFails) {
  EXPECT_GGUF_ERROR(with_alignment(kTypeU32, 1u << 21), ErrorCode::kCorrupt, "general.alignment 2097152");
  EXPECT_GGUF_ERROR(with_alignment(kTypeU32, 1u << 31), ErrorCode::kCorrupt, "not a power of two between");
}

TEST(GgufHardening, AlignmentOfWrongTypeFails) {
  EXPECT_GGUF_ERROR(with_alignment(kTypeU64, 32), ErrorCode::kCorrupt,
                    "general.alignment must be a u32, found u64");
}

TEST(GgufHardening, NDimsZeroFails) {
  GgufBytes g;
  g.header(1, 0).str("w").u32(0).u32(kF32).u64(0).zeros(16);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "tensor 'w': n_dims 0 is not between 1 and 4");
}

TEST(GgufHardening, NDimsFiveFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({1, 1, 1, 1, 1}, kF32, 0, 32), ErrorCode::kCorrupt, "n_dims 5");
}

TEST(GgufHardening, ZeroDimFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({8, 0}, kF32, 0, 32), ErrorCode::kCorrupt, "dimension 1 is 0");
}

TEST(GgufHardening, HugeDimFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({1ULL << 63}, kF32, 0, 32), ErrorCode::kCorrupt, "outside 1..2^63-1");
}

TEST(GgufHardening, DimsProductOverflowFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({1ULL << 32, 1ULL << 32, 2}, kF32, 0, 32), ErrorCode::kCorrupt,
                    "overflows 64 bits");
}

TEST(GgufHardening, DimsTimesTypeSizeOverflowFails) {
  // 2^62 elements fit in 64 bits; 2^62 x 4 bytes does not.
  EXPECT_GGUF_ERROR(one_tensor_file({1ULL << 31, 1ULL << 31}, kF32, 0, 32), ErrorCode::kCorrupt,
                    "size of shape [2147483648, 2147483648] x F32 overflows 64 bits");
}

TEST(GgufHardening, BlockTypeRowNotAMultipleOfTheBlockFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({33, 2}, kQ4_0, 0, 64), ErrorCode::kCorrupt,
                    "innermost dimension 33 is not a multiple of the Q4_0 block size 32");
}

TEST(GgufHardening, UnknownGgmlTypeFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({8}, 99, 0, 32), ErrorCode::kUnsupported,
                    "unsupported ggml type 99 (unknown) for tensor 'w'");
  EXPECT_GGUF_ERROR(one_tensor_file({256}, 16, 0, 256), ErrorCode::kUnsupported,
                    "unsupported ggml type 16 (IQ2_XXS) for tensor 'w'");
}

TEST(GgufHardening, MisalignedOffsetFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({8}, kF32, 4, 64), ErrorCode::kCorrupt,
                    "data offset 4 is not a multiple of the alignment 32");
}

TEST(GgufHardening, OffsetPastTheEndFails) {
  // "Bleeding Llama": offset + size beyond the file must never become a view.
  EXPECT_GGUF_ERROR(one_tensor_file({8}, kF32, 32, 32), ErrorCode::kCorrupt,
                    "runs past the end of the data section");
  EXPECT_GGUF_ERROR(one_tensor_file({16}, kF32, 0, 32), ErrorCode::kCorrupt,
                    "runs past the end of the data section");
}

TEST(GgufHardening, OffsetPlusSizeOverflowFails) {
  EXPECT_GGUF_ERROR(one_tensor_file({8}, kF32, ~0ULL - 31, 32), ErrorCode::kCorrupt,
                    "runs past the end of the data section");
}

TEST(GgufHardening, DataSectionPastTheEndFails) {
  GgufBytes g;
  g.header(1, 0).tensor("w", {8}, kF32, 0);  // no padding, no data
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "past the end of the file");
}

TEST(GgufHardening, OverlappingTensorsFail) {
  GgufBytes g;
  g.header(2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF32, 32).pad_to(32).zeros(64);
  EXPECT_GGUF_ERROR(g.b, ErrorCode::kCorrupt, "tensors 'a' and 'b' overlap");
  GgufBytes same;
  same.header(2, 0).tensor("a", {8}, kF32, 0).tensor("b", {8}, kF32, 0).pad_to(32).zeros(32);
  EXPECT_GGUF_ERROR(same.b, ErrorCode::kCorrupt, "overlap");
}

TEST(GgufHardening, TokensAsArrayOfU32AreRejected) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2")
      .add_u32_array("tokenizer.ggml.tokens", std::vector<uint32_t>{1, 2});
  TempGguf tmp;
  auto f = tmp.open(*w.to_bytes());
  ASSERT_TRUE(f.is_ok());
  auto tok = read_gguf_tokenizer(**f);
  EXPECT_EQ(tok.status().code(), ErrorCode::kCorrupt);
  EXPECT_NE(
      tok.status().message().find("'tokenizer.ggml.tokens' is an array of u32, expected an array of string"),
      std::string::npos)
      << tok.status().message();
}

TEST(GgufHardening, TokenIdAtOrAboveVocabIsRejected) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b"})
      .add_u32("tokenizer.ggml.eos_token_id", 2);
  TempGguf tmp;
  auto f = tmp.open(*w.to_bytes());
  ASSERT_TRUE(f.is_ok());
  auto tok = read_gguf_tokenizer(**f);
  EXPECT_EQ(tok.status().code(), ErrorCode::kOutOfRange);
  EXPECT_NE(tok.status().message().find("tokenizer.ggml.eos_token_id = 2 is not below the vocabulary size 2"),
            std::string::npos)
      << tok.status().message();
}

TEST(GgufHardening, NoViewEscapesTheFile) {
  // Every tensor view of a valid file lies inside the mapping.
  TempGguf tmp;
  auto f = tmp.open(valid_small_file());
  ASSERT_TRUE(f.is_ok());
  const auto bytes = (*f)->bytes();
  for (const auto& t : (*f)->tensors()) {
    EXPECT_GE(t.data.data(), bytes.data());
    EXPECT_LE(t.data.data() + t.data.size(), bytes.data() + bytes.size());
    EXPECT_EQ(t.data.data() - bytes.data(), static_cast<ptrdiff_t>(t.file_offset));
  }
}

// The fuzz seeds (tools/fuzz_seeds/make_gguf_seeds.py) double as regression inputs: valid_* open and
// read back, bad_* are rejected by the reader or the tokenizer reader.
TEST(GgufHardening, FuzzSeedCorpusValidFilesOpenAndBadFilesFail) {
  const std::filesystem::path dir = std::filesystem::path(HEARTH_SOURCE_DIR) / "fuzz" / "corpus" / "gguf";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int valid = 0, bad = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    auto f = GgufFile::open(entry.path().string());
    if (name.starts_with("valid_")) {
      ++valid;
      ASSERT_TRUE(f.is_ok()) << name << ": " << f.status().to_string();
      if (name == "valid_tokenizer.gguf") EXPECT_TRUE(read_gguf_tokenizer(**f).is_ok());
    } else if (name.starts_with("bad_")) {
      ++bad;
      const bool rejected = !f.is_ok() || !read_gguf_tokenizer(**f).is_ok();
      EXPECT_TRUE(rejected) << name << " was accepted";
      if (f.is_ok()) EXPECT_NE(name.find("token"), std::string::npos) << name << " opened";
    }
  }
  EXPECT_GE(valid, 20);
  EXPECT_GE(bad, 30);
}

}  // namespace
}  // namespace hearth
