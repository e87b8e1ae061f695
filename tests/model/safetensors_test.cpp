// safetensors: what valid files look like and what the writer produces (the rejections are in
// safetensors_hardening_test.cpp).
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hearth-st-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// A tensor whose bytes are `bytes` (copied into fill).
SafetensorsTensorToWrite tensor(std::string name, DType dtype, std::vector<uint64_t> shape,
                                std::vector<uint8_t> bytes) {
  SafetensorsTensorToWrite t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.fill = [bytes = std::move(bytes)](std::span<uint8_t> out) {
    if (out.size() != bytes.size()) return make_error(ErrorCode::kInternal, "size mismatch");
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return Status::ok();
  };
  return t;
}

std::vector<uint8_t> bytes_of(const TensorView& t) {
  return {t.data.begin(), t.data.end()};
}

uint64_t header_length(const std::string& path) {
  auto file = MappedFile::open(path);
  EXPECT_TRUE(file.is_ok());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | (*file)->data()[i];
  return n;
}

TEST(Safetensors, RoundTripsEverySafetensorsDtype) {
  TempDir dir;
  std::vector<SafetensorsTensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> expected;
  for (int i = 0; i <= static_cast<int>(DType::kQ6_K); ++i) {
    const auto dtype = static_cast<DType>(i);
    if (dtype_info(dtype).is_quantized) continue;
    std::vector<uint64_t> shape{3, 5};
    auto bytes = random_bytes(*tensor_nbytes(dtype, shape), static_cast<uint32_t>(i));
    expected.push_back(bytes);
    tensors.push_back(tensor(fmt::format("t.{}", dtype_name(dtype)), dtype, shape, bytes));
  }
  ASSERT_EQ(tensors.size(), 12u);  // F32 F16 BF16 F64 F8_E4M3 F8_E5M2 I8 U8 I16 I32 I64 BOOL
  const std::string path = dir.file("all.safetensors");
  ASSERT_TRUE(write_safetensors(path, tensors, {{"format", "pt"}}).is_ok());

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& t = (*file)->tensors()[i];  // data-offset order == write order
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_EQ(t.numel(), 15u);
    EXPECT_EQ(bytes_of(t), expected[i]) << t.name;
    EXPECT_EQ(t.file, path);
    EXPECT_EQ((*file)->find(t.name), &t);
  }
  EXPECT_EQ((*file)->find("missing"), nullptr);
}

TEST(Safetensors, WriterPadsHeaderWithSpacesToEightBytes) {
  TempDir dir;
  for (size_t name_len = 1; name_len <= 9; ++name_len) {
    const std::string path = dir.file(fmt::format("p{}.safetensors", name_len));
    std::vector<SafetensorsTensorToWrite> tensors{
        tensor(std::string(name_len, 'w'), DType::kF32, {2}, {1, 2, 3, 4, 5, 6, 7, 8})};
    ASSERT_TRUE(write_safetensors(path, tensors).is_ok());
    const uint64_t n = header_length(path);
    EXPECT_EQ(n % 8, 0u);
    auto text = read_file(path, 1 << 20);
    ASSERT_TRUE(text.is_ok());
    const std::string header = text->substr(8, n);
    EXPECT_EQ(header.front(), '{');
    const size_t last = header.find_last_not_of(' ');
    EXPECT_EQ(header[last], '}');
    EXPECT_LT(header.size() - last - 1, 8u);
    auto file = SafetensorsFile::open(path);
    ASSERT_TRUE(file.is_ok()) << file.status().to_string();
    EXPECT_EQ((*file)->tensors()[0].file_offset % 8, 0u);
  }
}

TEST(Safetensors, WriterProducesTheReferenceLayout) {
  // Same bytes as the reference implementation writes for this input: compact JSON, offsets in
  // order, space padding, then the data.
  TempDir dir;
  const std::string path = dir.file("ref.safetensors");
  std::vector<SafetensorsTensorToWrite> tensors{tensor("a", DType::kF32, {2}, {0, 0, 128, 63, 0, 0, 0, 64}),
                                                tensor("b", DType::kI64, {}, {7, 0, 0, 0, 0, 0, 0, 0})};
  ASSERT_TRUE(write_safetensors(path, tensors, {{"format", "pt"}}).is_ok());
  auto text = read_file(path, 1 << 20);
  ASSERT_TRUE(text.is_ok());
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})";
  std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  std::string expected(8, '\0');
  for (int i = 0; i < 8; ++i) expected[i] = static_cast<char>((padded.size() >> (8 * i)) & 0xFF);
  expected += padded;
  expected += std::string("\0\0\x80\x3f\0\0\0\x40\x07\0\0\0\0\0\0\0", 16);
  EXPECT_EQ(*text, expected);
}

TEST(Safetensors, AcceptsZeroSizeAndScalarTensors) {
  TempDir dir;
  const std::string path = dir.file("z.safetensors");
  std::vector<SafetensorsTensorToWrite> tensors{tensor("empty_before", DType::kBF16, {0, 4}, {}),
                                                tensor("scalar", DType::kF32, {}, {1, 2, 3, 4}),
                                                tensor("empty_after", DType::kF32, {4, 0}, {})};
  ASSERT_TRUE(write_safetensors(path, tensors).is_ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  const TensorView* empty = (*file)->find("empty_before");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0u);
  EXPECT_TRUE(empty->data.empty());
  EXPECT_EQ(empty->shape, (std::vector<uint64_t>{0, 4}));
  const TensorView* scalar = (*file)->find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_EQ(scalar->numel(), 1u);
  EXPECT_EQ(bytes_of(*scalar), (std::vector<uint8_t>{1, 2, 3, 4}));
}

TEST(Safetensors, AcceptsAFileWithNoTensors) {
  TempDir dir;
  const std::string path = dir.file("none.safetensors");
  ASSERT_TRUE(write_safetensors(path, {}, {{"k", "v"}}).is_ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_EQ((*file)->metadata().at("k"), "v");
}

TEST(Safetensors, ReadsHeadersFromOtherWriters) {
  // Unpadded header, keys in another order, __metadata__ last, data_offsets not in name order.
  const std::string json =
      R"({"z":{"data_offsets":[0,2],"shape":[1],"dtype":"BF16"},)"
      R"( "a":{"shape":[2],"dtype":"U8","data_offsets":[2,4]}, "__metadata__":{"format":"np"}})";
  std::vector<uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>((json.size() >> (8 * i)) & 0xFF);
  bytes.insert(bytes.end(), json.begin(), json.end());
  bytes.insert(bytes.end(), {9, 8, 7, 6});
  auto file = SafetensorsFile::open_memory("mem.safetensors", bytes);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  ASSERT_EQ((*file)->tensors().size(), 2u);
  EXPECT_EQ((*file)->tensors()[0].name, "z");
  EXPECT_EQ((*file)->tensors()[1].name, "a");
  EXPECT_EQ(bytes_of(*(*file)->find("a")), (std::vector<uint8_t>{7, 6}));
  EXPECT_EQ((*file)->find("a")->file_offset, 8 + json.size() + 2);
  EXPECT_EQ((*file)->metadata().at("format"), "np");
  EXPECT_EQ((*file)->path(), "mem.safetensors");
}

TEST(Safetensors, OpenMemoryAgreesWithOpen) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  std::vector<SafetensorsTensorToWrite> tensors{tensor("x", DType::kF16, {2, 2}, random_bytes(8, 1))};
  ASSERT_TRUE(write_safetensors(path, tensors).is_ok());
  auto text = read_file(path, 1 << 20);
  ASSERT_TRUE(text.is_ok());
  auto mem = SafetensorsFile::open_memory(path, std::vector<uint8_t>(text->begin(), text->end()));
  auto disk = SafetensorsFile::open(path);
  ASSERT_TRUE(mem.is_ok() && disk.is_ok());
  EXPECT_EQ(bytes_of((*mem)->tensors()[0]), bytes_of((*disk)->tensors()[0]));
  EXPECT_EQ((*mem)->tensors()[0].file_offset, (*disk)->tensors()[0].file_offset);
}

TEST(SafetensorsWriter, CallsFillOncePerTensorWithItsExactSize) {
  TempDir dir;
  std::vector<size_t> sizes;
  std::vector<SafetensorsTensorToWrite> tensors(3);
  const std::vector<std::vector<uint64_t>> shapes{{1000, 3}, {7}, {0}};
  for (size_t i = 0; i < 3; ++i) {
    tensors[i].name = fmt::format("t{}", i);
    tensors[i].dtype = DType::kI32;
    tensors[i].shape = shapes[i];
    tensors[i].fill = [&sizes](std::span<uint8_t> out) {
      sizes.push_back(out.size());
      std::fill(out.begin(), out.end(), uint8_t{0xAB});
      return Status::ok();
    };
  }
  ASSERT_TRUE(write_safetensors(dir.file("f.safetensors"), tensors).is_ok());
  EXPECT_EQ(sizes, (std::vector<size_t>{12000, 28, 0}));
}

TEST(SafetensorsWriter, FillErrorLeavesNoFileBehind) {
  TempDir dir;
  const std::string path = dir.file("fail.safetensors");
  std::vector<SafetensorsTensorToWrite> tensors{tensor("ok", DType::kU8, {4}, {1, 2, 3, 4})};
  SafetensorsTensorToWrite bad;
  bad.name = "bad";
  bad.shape = {2};
  bad.fill = [](std::span<uint8_t>) { return make_error(ErrorCode::kInternal, "generator broke"); };
  tensors.push_back(bad);
  Status st = write_safetensors(path, tensors);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("generator broke"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'bad'"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(SafetensorsWriter, ReportsThePathWhenItCannotWrite) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.safetensors");
  Status st = write_safetensors(path, {});
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), ErrorCode::kIo);
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
}

TEST(SafetensorsWriter, RefusesWhatTheReaderWouldReject) {
  TempDir dir;
  auto write = [&](std::vector<SafetensorsTensorToWrite> t) {
    return write_safetensors(dir.file("r.safetensors"), t);
  };
  EXPECT_FALSE(write({tensor("a", DType::kU8, {1}, {1}), tensor("a", DType::kU8, {1}, {1})}).is_ok());
  EXPECT_FALSE(write({tensor("", DType::kU8, {1}, {1})}).is_ok());
  EXPECT_FALSE(write({tensor("__metadata__", DType::kU8, {1}, {1})}).is_ok());
  EXPECT_FALSE(write({tensor("bad\xff", DType::kU8, {1}, {1})}).is_ok());
  EXPECT_FALSE(write({tensor("q", DType::kQ8_0, {32}, std::vector<uint8_t>(34))}).is_ok());
  EXPECT_FALSE(write({tensor("d", DType::kU8, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {1})}).is_ok());
  EXPECT_FALSE(write({tensor("o", DType::kF32, {1ull << 62, 4}, {})}).is_ok());
  SafetensorsTensorToWrite no_fill;
  no_fill.name = "n";
  no_fill.shape = {1};
  EXPECT_FALSE(write({no_fill}).is_ok());
  EXPECT_FALSE(fs::exists(dir.file("r.safetensors")));
}

TEST(SafetensorsWriter, ReplacesAnExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  ASSERT_TRUE(write_safetensors(path, std::vector{tensor("old", DType::kU8, {1}, {1})}).is_ok());
  ASSERT_TRUE(write_safetensors(path, std::vector{tensor("new", DType::kU8, {1}, {2})}).is_ok());
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.is_ok());
  EXPECT_NE((*file)->find("new"), nullptr);
  EXPECT_EQ((*file)->find("old"), nullptr);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// ---- checkpoints

void write_shard(const std::string& path, const std::vector<std::string>& names) {
  std::vector<SafetensorsTensorToWrite> tensors;
  for (size_t i = 0; i < names.size(); ++i) {
    tensors.push_back(tensor(names[i], DType::kBF16, {2}, {static_cast<uint8_t>(i), 0, 0, 0}));
  }
  ASSERT_TRUE(write_safetensors(path, tensors).is_ok());
}

TEST(SafetensorsCheckpoint, OpensAShardedCheckpointThroughItsIndex) {
  TempDir dir;
  write_shard(dir.file("model-00001-of-00002.safetensors"),
              {"model.embed_tokens.weight", "model.norm.weight"});
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"lm_head.weight"});
  write_shard(dir.file("unrelated.safetensors"), {"ignored"});  // not in the index: not opened
  ASSERT_TRUE(write_file(dir.file("model.safetensors.index.json"),
                         R"({"metadata": {"total_size": 12}, "weight_map": {
                              "lm_head.weight": "model-00002-of-00002.safetensors",
                              "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                              "model.norm.weight": "model-00001-of-00002.safetensors"}})")
                  .is_ok());
  auto ckpt = SafetensorsCheckpoint::open_dir(dir.path());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->files().size(), 2u);
  ASSERT_EQ((*ckpt)->tensors().size(), 3u);
  EXPECT_EQ((*ckpt)->tensors()[0]->name, "lm_head.weight");  // sorted by name
  EXPECT_EQ((*ckpt)->tensors()[2]->name, "model.norm.weight");
  const TensorView* head = (*ckpt)->find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->file, dir.file("model-00002-of-00002.safetensors"));
  EXPECT_EQ((*ckpt)->find("ignored"), nullptr);
}

TEST(SafetensorsCheckpoint, OpensASingleModelSafetensors) {
  TempDir dir;
  write_shard(dir.file("model.safetensors"), {"a", "b"});
  write_shard(dir.file("other.safetensors"), {"c"});  // model.safetensors wins
  auto ckpt = SafetensorsCheckpoint::open_dir(dir.path());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->tensors().size(), 2u);
  EXPECT_EQ((*ckpt)->files().size(), 1u);
}

TEST(SafetensorsCheckpoint, FallsBackToAllSafetensorsFilesSorted) {
  TempDir dir;
  write_shard(dir.file("b.safetensors"), {"y"});
  write_shard(dir.file("a.safetensors"), {"x"});
  ASSERT_TRUE(write_file(dir.file("notes.txt"), "not weights").is_ok());
  auto ckpt = SafetensorsCheckpoint::open_dir(dir.path());
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  ASSERT_EQ((*ckpt)->files().size(), 2u);
  EXPECT_EQ((*ckpt)->files()[0]->path(), dir.file("a.safetensors"));
  EXPECT_NE((*ckpt)->find("x"), nullptr);
  EXPECT_NE((*ckpt)->find("y"), nullptr);
}

TEST(SafetensorsCheckpoint, AcceptsAPathToOneFile) {
  TempDir dir;
  write_shard(dir.file("weights.safetensors"), {"w"});
  auto ckpt = SafetensorsCheckpoint::open_dir(dir.file("weights.safetensors"));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_NE((*ckpt)->find("w"), nullptr);
}

TEST(SafetensorsCheckpoint, SaysClearlyWhenNoWeightsAreFound) {
  TempDir dir;
  ASSERT_TRUE(write_file(dir.file("config.json"), "{}").is_ok());
  auto ckpt = SafetensorsCheckpoint::open_dir(dir.path());
  ASSERT_FALSE(ckpt.is_ok());
  EXPECT_EQ(ckpt.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(ckpt.status().message().find("no model weights found"), std::string::npos);
  auto missing = SafetensorsCheckpoint::open_dir(dir.file("nope"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace hearth
