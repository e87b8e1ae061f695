// safetensors hardening: one named test per rule of RELIABILITY.md "Untrusted files", each with a
// crafted file. Every rejection must be a clean Status naming the file, the tensor and the rule.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/fp8_block.h"
#include "model/safetensors.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class SafetensorsHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "hearth-sth-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // The 8-byte little-endian length `n` followed by `rest`.
  static std::string with_length(uint64_t n, std::string_view rest) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    out += rest;
    return out;
  }
  // A well-formed envelope around `header` JSON and `data` bytes.
  static std::string st_bytes(std::string_view header, std::string_view data) {
    std::string rest(header);
    rest += data;
    return with_length(header.size(), rest);
  }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = file(name);
    EXPECT_TRUE(write_file(path, bytes).is_ok());
    return path;
  }

  // Opens crafted bytes and expects a kCorrupt/kOutOfRange error containing every fragment.
  void expect_rejected(const std::string& bytes, std::initializer_list<std::string_view> fragments) {
    const std::string path = write("crafted.safetensors", bytes);
    auto r = SafetensorsFile::open(path);
    ASSERT_FALSE(r.is_ok()) << "accepted a crafted file";
    const std::string& msg = r.status().message();
    EXPECT_TRUE(r.status().code() == ErrorCode::kCorrupt || r.status().code() == ErrorCode::kOutOfRange)
        << r.status().to_string();
    EXPECT_NE(msg.find(path), std::string::npos) << "error does not name the file: " << msg;
    for (std::string_view f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }

  std::string dir_;
};

// A valid two-tensor file: "a" F32 [2] at [0, 8), "b" U8 [4] at [8, 12).
constexpr std::string_view kGoodHeader =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})";
const std::string kGoodData(12, '\x01');

TEST_F(SafetensorsHardening, TheBaselineCraftedFileIsValid) {
  auto r = SafetensorsFile::open(write("good.safetensors", st_bytes(kGoodHeader, kGoodData)));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->tensors().size(), 2u);
}

TEST_F(SafetensorsHardening, EveryPrefixOfATruncatedFileFailsCleanly) {
  std::vector<SafetensorsTensorToWrite> tensors(2);
  tensors[0].name = "w";
  tensors[0].dtype = DType::kBF16;
  tensors[0].shape = {3, 4};
  tensors[1].name = "v";
  tensors[1].dtype = DType::kI64;
  tensors[1].shape = {2};
  for (auto& t : tensors) {
    t.fill = [](std::span<uint8_t> out) {
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i);
      return Status::ok();
    };
  }
  const std::string full_path = file("full.safetensors");
  ASSERT_TRUE(write_safetensors(full_path, tensors, {{"format", "pt"}}).is_ok());
  auto full = read_file(full_path, 1 << 20);
  ASSERT_TRUE(full.is_ok());
  ASSERT_TRUE(SafetensorsFile::open(full_path).is_ok());
  for (size_t len = 0; len < full->size(); ++len) {
    const std::string path = write(fmt::format("prefix{}.safetensors", len), full->substr(0, len));
    auto r = SafetensorsFile::open(path);
    ASSERT_FALSE(r.is_ok()) << "prefix of " << len << " bytes was accepted";
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  }
}

TEST_F(SafetensorsHardening, FileShorterThanTheLengthFieldIsRejected) {
  expect_rejected("", {"too short"});
  expect_rejected(std::string("\x10\0\0", 3), {"too short"});
}

TEST_F(SafetensorsHardening, HeaderLengthPastTheEndOfTheFileIsRejected) {
  const std::string header(kGoodHeader);
  std::string bytes = with_length(header.size() + kGoodData.size() + 1, header + kGoodData);
  expect_rejected(bytes, {"header length", "past the end"});
}

TEST_F(SafetensorsHardening, HugeHeaderLengthIsRejectedBeforeAnyAllocation) {
  expect_rejected(with_length(~0ull, "{}"), {"exceeds the 104857600 byte limit"});
  expect_rejected(with_length((100ull << 20) + 1, "{}"), {"exceeds"});
}

TEST_F(SafetensorsHardening, HeaderLengthTooSmallForAnObjectIsRejected) {
  expect_rejected(with_length(1, "{}"), {"too small"});
  expect_rejected(with_length(0, ""), {"too small"});
}

TEST_F(SafetensorsHardening, HeaderThatIsNotJsonIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"F32",)", ""), {"not valid JSON"});
  expect_rejected(st_bytes("{} trailing", ""), {"not valid JSON"});
  expect_rejected(st_bytes(std::string("{}\0\0\0\0", 6), ""), {"NUL byte"});
  expect_rejected(st_bytes(std::string("{}\0{\"x\": 1}", 11), ""), {"NUL byte"});
}

TEST_F(SafetensorsHardening, HeaderThatIsNotAnObjectIsRejected) {
  expect_rejected(st_bytes("[]", ""), {"not a JSON object", "an array"});
  expect_rejected(st_bytes(R"("text")", ""), {"not a JSON object"});
  expect_rejected(st_bytes("42", ""), {"not a JSON object"});
}

TEST_F(SafetensorsHardening, NestingDeeperThanEightLevelsIsRejected) {
  expect_rejected(st_bytes(R"({"__metadata__":{"k":[[[[[[[[[]]]]]]]]]}})", ""), {"nesting deeper than 8"});
}

TEST_F(SafetensorsHardening, HeaderWithInvalidUtf8IsRejected) {
  expect_rejected(st_bytes("{\"a\xC3\x28\":{}}", ""), {"not valid UTF-8"});
}

TEST_F(SafetensorsHardening, TensorNameWithBadUtf8IsRejected) {
  // A lone surrogate escape decodes to no valid UTF-8; overlong encodings are raw invalid bytes.
  expect_rejected(st_bytes(R"({"a\udc00":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", ""),
                  {"not valid JSON"});
  expect_rejected(st_bytes("{\"\xC0\xAF\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", ""),
                  {"not valid UTF-8"});
}

TEST_F(SafetensorsHardening, EmptyOrNulContainingTensorNameIsRejected) {
  expect_rejected(st_bytes(R"({"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", ""), {"name is empty"});
  expect_rejected(st_bytes(R"({"a\u0000b":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", ""), {"NUL"});
}

TEST_F(SafetensorsHardening, TensorNameLongerThan64KiBIsRejected) {
  const std::string name(65537, 'n');
  expect_rejected(st_bytes(R"({")" + name + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", ""),
                  {"exceeds the 65536 byte limit"});
}

TEST_F(SafetensorsHardening, DuplicateTensorNamesAreRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                           "xy"),
                  {"duplicate tensor name 'a'"});
}

TEST_F(SafetensorsHardening, DuplicateMetadataObjectIsRejected) {
  expect_rejected(st_bytes(R"({"__metadata__":{},"__metadata__":{}})", ""), {"duplicate key '__metadata__'"});
}

TEST_F(SafetensorsHardening, DuplicateKeyInsideAnEntryIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'a'", "duplicate key 'dtype'"});
}

TEST_F(SafetensorsHardening, UnknownKeyInsideAnEntryIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"offset":0}})", "x"),
                  {"tensor 'a'", "unknown key 'offset'"});
}

TEST_F(SafetensorsHardening, MissingKeyInsideAnEntryIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1]}})", "x"),
                  {"tensor 'a'", "missing key 'data_offsets'"});
  expect_rejected(st_bytes(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", "x"), {"missing key 'dtype'"});
}

TEST_F(SafetensorsHardening, EntryThatIsNotAnObjectIsRejected) {
  expect_rejected(st_bytes(R"({"a":[1,2]})", ""), {"tensor 'a'", "entry must be an object"});
}

TEST_F(SafetensorsHardening, UnknownDtypeIsRejected) {
  expect_rejected(st_bytes(R"({"w":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "unknown dtype 'Q4_K'"});
  expect_rejected(st_bytes(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                  {"unknown dtype"});
  expect_rejected(st_bytes(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                  {"dtype must be a string"});
}

TEST_F(SafetensorsHardening, OffsetsPastTheEndOfTheFileAreRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}})", "only8..."),
                  {"tensor 'a'", "data_offsets [0, 16)", "past the end of the 8 byte data buffer"});
  // Offsets near 2^64 must not wrap around.
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[18446744073709551615,1]}})", "xy"),
      {"tensor 'a'", "end before they begin"});
}

TEST_F(SafetensorsHardening, OverlappingTensorsAreRejected) {
  expect_rejected(st_bytes(R"({"x.weight":{"dtype":"U8","shape":[20],"data_offsets":[0,20]},)"
                           R"("y":{"dtype":"U8","shape":[20],"data_offsets":[10,30]}})",
                           std::string(30, 'd')),
                  {"tensor 'x.weight': data_offsets [0, 20) overlap tensor 'y' [10, 30)"});
}

TEST_F(SafetensorsHardening, ZeroSizeTensorInsideAnotherIsAnOverlap) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                           R"("e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}})",
                           "abcd"),
                  {"overlap tensor 'e' [2, 2)"});
}

TEST_F(SafetensorsHardening, HoleBetweenTensorsIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                           R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                           "abcdef"),
                  {"tensor 'b'", "hole of 2 bytes after tensor 'a' [0, 2)"});
  expect_rejected(st_bytes(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})", "abcde"),
                  {"tensor 'b'", "[0, 3) unused"});
}

TEST_F(SafetensorsHardening, TrailingBytesAfterTheLastTensorAreRejected) {
  expect_rejected(st_bytes(kGoodHeader, kGoodData + "extra"),
                  {"data buffer is 17 bytes", "5 trailing bytes"});
  expect_rejected(st_bytes("{}", "x"), {"1 trailing bytes"});
}

TEST_F(SafetensorsHardening, OffsetsThatDisagreeWithDtypeAndShapeAreRejected) {
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"F32","shape":[3,2],"data_offsets":[0,20]}})", std::string(20, 'd')),
      {"tensor 'a'", "data_offsets [0, 20) hold 20 bytes but F32 [3, 2] needs 24"});
}

TEST_F(SafetensorsHardening, ElementCountOverflowIsRejected) {
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})", ""),
      {"tensor 'a'", "more elements than fit in 64 bits"});
}

TEST_F(SafetensorsHardening, DimsTimesElementSizeOverflowIsRejected) {
  // 2^62 * 2 elements fit in 64 bits; times 4 bytes per F32 element they do not.
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"F32","shape":[4611686018427387904,2],"data_offsets":[0,0]}})", ""),
      {"tensor 'a'", "x 4 bytes per element overflows"});
}

TEST_F(SafetensorsHardening, HugeDimsPastTheFileAreRejected) {
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"BF16","shape":[1000000,1000000],"data_offsets":[0,2000000000000]}})", "xx"),
      {"tensor 'a'", "past the end"});
}

TEST_F(SafetensorsHardening, NegativeDimIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", ""),
                  {"tensor 'a'", "shape dims must be non-negative integers", "-1"});
}

TEST_F(SafetensorsHardening, NonIntegerDimIsRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}})", ""),
                  {"tensor 'a'", "non-integer number 1.5"});
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"U8","shape":[1e2],"data_offsets":[0,100]}})", std::string(100, 'x')),
      {"non-integer"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":["4"],"data_offsets":[0,4]}})", "abcd"),
                  {"a string"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}})", "a"),
                  {"a boolean"});
  // Larger than any u64: the JSON parser sees a float.
  expect_rejected(
      st_bytes(R"({"a":{"dtype":"U8","shape":[99999999999999999999999],"data_offsets":[0,0]}})", ""),
      {"non-integer"});
}

TEST_F(SafetensorsHardening, MoreThanEightDimsAreRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'a'", "more than 8 dims"});
}

TEST_F(SafetensorsHardening, MalformedDataOffsetsAreRejected) {
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x"),
                  {"has 1 elements"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", "x"),
                  {"more than 2"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,-1]}})", "x"), {"negative"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":{"b":0}}})", "x"),
                  {"data_offsets must be an array"});
  expect_rejected(st_bytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[5,3]}})", std::string(5, 'x')),
                  {"end before they begin"});
}

TEST_F(SafetensorsHardening, MetadataWithNonStringValuesIsRejected) {
  expect_rejected(st_bytes(R"({"__metadata__":{"format":"pt","total":1}})", ""),
                  {"__metadata__ value of 'total' must be a string"});
  expect_rejected(st_bytes(R"({"__metadata__":{"nested":{"a":"b"}}})", ""),
                  {"__metadata__ value of 'nested'"});
  expect_rejected(st_bytes(R"({"__metadata__":["pt"]})", ""), {"__metadata__ must be an object"});
  expect_rejected(st_bytes(R"({"__metadata__":{"k":"a","k":"b"}})", ""), {"duplicate key 'k'"});
}

// ---- sharded checkpoints

class SafetensorsIndexHardening : public SafetensorsHardening {
 protected:
  void write_shard(const std::string& name, const std::vector<std::string>& tensors) {
    std::vector<SafetensorsTensorToWrite> ts;
    for (const std::string& t : tensors) {
      SafetensorsTensorToWrite w;
      w.name = t;
      w.dtype = DType::kU8;
      w.shape = {1};
      w.fill = [](std::span<uint8_t> out) {
        out[0] = 1;
        return Status::ok();
      };
      ts.push_back(std::move(w));
    }
    ASSERT_TRUE(write_safetensors(file(name), ts).is_ok());
  }
  void write_index(const std::string& json) {
    ASSERT_TRUE(write_file(file("model.safetensors.index.json"), json).is_ok());
  }
  void expect_dir_rejected(std::initializer_list<std::string_view> fragments) {
    auto r = SafetensorsCheckpoint::open_dir(dir_);
    ASSERT_FALSE(r.is_ok()) << "accepted a crafted checkpoint";
    for (std::string_view f : fragments) {
      EXPECT_NE(r.status().message().find(f), std::string::npos)
          << "'" << f << "' not in: " << r.status().message();
    }
  }
};

TEST_F(SafetensorsIndexHardening, PathTraversalInAShardNameIsRejected) {
  write_shard("model-1.safetensors", {"a"});
  for (const std::string shard :
       {"../model-1.safetensors", "/etc/passwd.safetensors", "sub/model-1.safetensors",
        "sub\\\\model-1.safetensors", "model-1.bin", "..safetensors", ".safetensors"}) {
    write_index(R"({"weight_map":{"a":")" + shard + R"("}})");
    expect_dir_rejected({"model.safetensors.index.json", "weight_map['a']", "must be a plain file name"});
  }
}

TEST_F(SafetensorsIndexHardening, IndexNamingAMissingTensorIsRejected) {
  write_shard("s1.safetensors", {"a"});
  write_index(R"({"weight_map":{"a":"s1.safetensors","ghost":"s1.safetensors"}})");
  expect_dir_rejected({"tensor 'ghost' is listed in shard 's1.safetensors' but is not there"});
}

TEST_F(SafetensorsIndexHardening, IndexNamingAMissingShardIsRejected) {
  write_shard("s1.safetensors", {"a"});
  write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  expect_dir_rejected({"shard 's2.safetensors'", "does not exist"});
}

TEST_F(SafetensorsIndexHardening, TensorInTwoShardsIsRejected) {
  write_shard("s1.safetensors", {"a", "shared"});
  write_shard("s2.safetensors", {"b", "shared"});
  write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors","shared":"s1.safetensors"}})");
  expect_dir_rejected(
      {"tensor 'shared' is in shard 's2.safetensors' but the index places it in 's1.safetensors'"});
}

TEST_F(SafetensorsIndexHardening, TensorInTwoFilesWithoutAnIndexIsRejected) {
  write_shard("s1.safetensors", {"a", "shared"});
  write_shard("s2.safetensors", {"shared"});
  expect_dir_rejected({"tensor 'shared' is in two files", "s1.safetensors", "s2.safetensors"});
}

TEST_F(SafetensorsIndexHardening, TensorMissingFromTheIndexIsRejected) {
  write_shard("s1.safetensors", {"a", "stowaway"});
  write_index(R"({"weight_map":{"a":"s1.safetensors"}})");
  expect_dir_rejected({"tensor 'stowaway' in shard 's1.safetensors' is not listed in the index"});
}

TEST_F(SafetensorsIndexHardening, DuplicateKeysInTheIndexAreRejected) {
  write_shard("s1.safetensors", {"a"});
  write_shard("s2.safetensors", {"b"});
  write_index(R"({"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}})");
  expect_dir_rejected({"duplicate key 'a'"});
}

TEST_F(SafetensorsIndexHardening, MalformedIndexIsRejected) {
  write_shard("s1.safetensors", {"a"});
  write_index("{not json");
  expect_dir_rejected({"model.safetensors.index.json", "not valid JSON"});
  write_index(R"({"metadata":{}})");
  expect_dir_rejected({"'weight_map' is missing or not an object"});
  write_index(R"({"weight_map":{"a":1}})");
  expect_dir_rejected({"weight_map['a'] is not a string"});
  write_index(R"({"weight_map":{}})");
  expect_dir_rejected({"lists no tensors"});
  write_index(R"({"weight_map":{"a":[[[[[[[[["s1.safetensors"]]]]]]]]]}})");
  expect_dir_rejected({"nesting deeper than 8"});
}

TEST_F(SafetensorsIndexHardening, ACorruptShardIsReportedWithItsPath) {
  ASSERT_TRUE(write_file(file("s1.safetensors"),
                         st_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "ab"))
                  .is_ok());
  write_index(R"({"weight_map":{"a":"s1.safetensors"}})");
  expect_dir_rejected({file("s1.safetensors"), "tensor 'a'", "past the end"});
}

// ---- the fuzz seed corpus doubles as a regression suite

TEST(SafetensorsFuzzSeeds, ValidSeedsOpenAndBadSeedsAreRejected) {
  const fs::path dir = fs::path(HEARTH_SOURCE_DIR) / "fuzz" / "corpus" / "safetensors";
  int valid = 0, bad = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    auto r = SafetensorsFile::open(entry.path().string());
    if (name.rfind("valid_", 0) == 0) {
      EXPECT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
      ++valid;
    } else if (name.rfind("bad_", 0) == 0) {
      EXPECT_FALSE(r.is_ok()) << name << " was accepted";
      ++bad;
    }
  }
  EXPECT_GE(valid, 5);
  EXPECT_GE(bad, 25);
}

TEST(SafetensorsFuzzSeeds, Fp8SeedsPairAsTheirNamesSay) {
  const fs::path dir = fs::path(HEARTH_SOURCE_DIR) / "fuzz" / "corpus" / "safetensors";
  for (const auto& [name, ok] :
       {std::pair{"valid_fp8_pair", true}, {"valid_file_fp8_scale_shape_wrong", false}}) {
    auto f = SafetensorsFile::open((dir / (std::string(name) + ".safetensors")).string());
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    const TensorView* w = (*f)->find("l.weight");
    const TensorView* s = (*f)->find("l.weight_scale_inv");
    ASSERT_TRUE(w != nullptr && s != nullptr);
    EXPECT_EQ(validate_fp8_block_pair(*w, *s, 128, 128).is_ok(), ok) << name;
  }
}

}  // namespace
}  // namespace hearth
