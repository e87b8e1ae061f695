// The CPU linear layers against their double-precision reference, for every storage format and every
// ISA this CPU runs: accuracy within a stated rounding bound, bit-identical fast decoders, batch and
// thread-count invariance, row ranges, strides and unaligned weight data.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "model/fp8_block.h"
#include "model/quant.h"

namespace hearth {
namespace {

constexpr int64_t kTokenCounts[] = {1, 2, 3, 5, 17, 70};
constexpr int64_t kMaxTokens = 70;

struct Shape {
  DType dtype;
  int64_t rows;
  int64_t cols;
  int64_t block_rows = 128;  // F8_E4M3 only
  int64_t block_cols = 128;
};

// Covers each format's fast and fallback paths: cols not a multiple of 8/16 (vector tails), cols < 16
// (tail only), rows not a multiple of the 4-row tile, BF16/Q8_0 with cols % 32 == 0 (AVX-512's
// in-register decode for <= 4 tokens), FP8 with ragged 128x128 blocks and with block_cols % 16 != 0
// (AVX-512 falls back to the reference decoder), Q6_K (reference decoder on every ISA).
const Shape kShapes[] = {
    {DType::kF32, 37, 77},
    {DType::kF32, 20, 5},
    {DType::kF32, 9, 300},
    {DType::kF16, 37, 77},
    {DType::kF16, 9, 300},
    {DType::kBF16, 37, 77},
    {DType::kBF16, 37, 96},
    {DType::kBF16, 9, 13},
    {DType::kF8_E4M3, 200, 300, 128, 128},
    {DType::kF8_E4M3, 50, 70, 16, 24},
    {DType::kQ8_0, 37, 96},
    {DType::kQ8_0, 10, 32},
    {DType::kQ4_0, 37, 96},
    {DType::kQ4_0, 6, 160},
    {DType::kQ4_K, 21, 512},
    {DType::kQ4_K, 5, 256},
    {DType::kQ6_K, 13, 256},
};

std::string describe(const Shape& s) {
  std::string d =
      std::string(dtype_name(s.dtype)) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols);
  if (s.dtype == DType::kF8_E4M3)
    d += " block " + std::to_string(s.block_rows) + "x" + std::to_string(s.block_cols);
  return d;
}

std::vector<float> random_floats(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// A weight matrix in one storage format, encoded from random floats; owns its bytes (moving keeps the
// view valid, copying would not).
struct TestWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightMatrix w;

  TestWeight() = default;
  TestWeight(TestWeight&&) = default;
  TestWeight(const TestWeight&) = delete;
};

// `misalign`: bytes before the matrix in its buffer (the checkpoint mapping gives no alignment).
TestWeight make_weight(const Shape& s, uint32_t seed, size_t misalign = 0) {
  std::mt19937 rng(seed);
  const std::vector<float> src = random_floats(rng, static_cast<size_t>(s.rows * s.cols));
  TestWeight tw;
  WeightMatrix& w = tw.w;
  w.dtype = s.dtype;
  w.rows = s.rows;
  w.cols = s.cols;
  w.row_bytes = weight_row_bytes(s.dtype, s.cols);
  EXPECT_GT(w.row_bytes, 0u) << describe(s);
  std::vector<uint8_t> packed(static_cast<size_t>(w.bytes()));
  if (s.dtype == DType::kF8_E4M3) {
    const Fp8BlockSize block{static_cast<uint32_t>(s.block_rows), static_cast<uint32_t>(s.block_cols)};
    const auto shape = fp8_scale_inv_shape(s.rows, s.cols, block);
    tw.scales.resize(shape[0] * shape[1]);
    const Status st = quantize_fp8_block(src.data(), s.rows, s.cols, block, packed.data(), tw.scales.data());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    w.block_rows = s.block_rows;
    w.block_cols = s.block_cols;
    w.scale_cols = static_cast<int64_t>(shape[1]);
  } else {
    const Status st = quantize(s.dtype, src, packed);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  tw.bytes.assign(misalign, 0xA5);
  tw.bytes.insert(tw.bytes.end(), packed.begin(), packed.end());
  w.data = tw.bytes.data() + misalign;
  w.block_scale = tw.scales.empty() ? nullptr : tw.scales.data();
  return tw;
}

std::vector<float> decode_all(const WeightMatrix& w) {
  std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) decode_row(w, r, out.data() + r * w.cols);
  return out;
}

float max_abs(std::span<const float> v) {
  float m = 0.0f;
  for (float f : v) m = std::max(m, std::fabs(f));
  return m;
}

std::vector<CpuIsa> supported_isas() {
  std::vector<CpuIsa> isas{CpuIsa::kReference};
  if (cpu_features().avx2) isas.push_back(CpuIsa::kAvx2);
  if (cpu_features().avx512) isas.push_back(CpuIsa::kAvx512);
  return isas;
}

ThreadPool& pool_of(int threads) {
  static ThreadPool p1(1), p2(2), p3(3);
  return threads == 1 ? p1 : threads == 2 ? p2 : p3;
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// Equal bits, or both NaN (vector conversions quieten signalling NaNs; the payload is not a value).
bool same_value(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || float_to_bits(a) == float_to_bits(b);
}

// y = x W^T for n tokens with packed strides.
std::vector<float> run_matmul(CpuIsa isa, const WeightMatrix& w, const float* x, int64_t n,
                              ThreadPool* pool) {
  std::vector<float> y(static_cast<size_t>(n * w.rows), NAN);
  matmul_isa(isa, w, x, w.cols, n, y.data(), w.rows, pool);
  return y;
}

// ---- hand-checked values ---------------------------------------------------------------------

TEST(Matmul, F32ProductOfKnownValues) {
  // W = [[1, 2, 3], [-1, 0.5, 4]]; x0 = [1, 1, 1], x1 = [2, -1, 0.25].
  const float wv[] = {1, 2, 3, -1, 0.5f, 4};
  const WeightMatrix w{DType::kF32, 2, 3, reinterpret_cast<const uint8_t*>(wv), 12};
  const float x[] = {1, 1, 1, 2, -1, 0.25f};
  for (CpuIsa isa : supported_isas()) {
    SCOPED_TRACE(std::string(cpu_isa_name(isa)));
    const std::vector<float> y = run_matmul(isa, w, x, 2, nullptr);
    EXPECT_EQ(y, (std::vector<float>{6.0f, 3.5f, 0.75f, -1.5f}));
  }
  std::vector<float> ref(4);
  matmul_reference(w, x, 3, 2, ref.data(), 2);
  EXPECT_EQ(ref, (std::vector<float>{6.0f, 3.5f, 0.75f, -1.5f}));
}

TEST(Matmul, Q8_0RowIsScaleTimesBytes) {
  // One Q8_0 row of 32: d = 0.5, q[j] = j - 16, so W[j] = (j - 16) / 2; x = 1 everywhere sums to -8.
  std::vector<uint8_t> blk(34);
  const uint16_t d = float_to_f16(0.5f);
  std::memcpy(blk.data(), &d, 2);
  for (int j = 0; j < 32; ++j) blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  const WeightMatrix w{DType::kQ8_0, 1, 32, blk.data(), 34};
  std::vector<float> x(32, 1.0f);
  x[31] = 3.0f;  // W[31] = 7.5 counted three times: -8 + 15 = 7
  for (CpuIsa isa : supported_isas()) {
    SCOPED_TRACE(std::string(cpu_isa_name(isa)));
    EXPECT_EQ(run_matmul(isa, w, x.data(), 1, nullptr)[0], 7.0f);
  }
}

// ---- accuracy against the reference ------------------------------------------------------------

// Every fast path against matmul_reference (decode_row + double accumulation). The fast paths sum in
// f32, so element (t, r) may differ by rounding that grows like sqrt(cols) for random signs; the bound
// is tol = 1e-5 * sqrt(cols) * max|W| * max|x_t|. The largest error seen over these shapes is ~6% of it,
// while a real defect (a dropped, duplicated or misdecoded term) costs on the order of max|W||x| / 4.
TEST(Matmul, EveryIsaMatchesTheReferenceWithinF32Rounding) {
  uint32_t seed = 1000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    const WeightMatrix& w = tw.w;
    const float max_w = max_abs(decode_all(w));
    std::mt19937 rng(++seed);
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(kMaxTokens * s.cols));
    std::vector<float> ref(static_cast<size_t>(kMaxTokens * s.rows), NAN);
    matmul_reference(w, x.data(), s.cols, kMaxTokens, ref.data(), s.rows);
    for (CpuIsa isa : supported_isas()) {
      for (int64_t n : kTokenCounts) {
        SCOPED_TRACE(std::string(cpu_isa_name(isa)) + " n=" + std::to_string(n));
        const std::vector<float> y = run_matmul(isa, w, x.data(), n, nullptr);
        double worst = 0.0;  // largest |y - ref| / tol
        for (int64_t t = 0; t < n; ++t) {
          const float max_x = max_abs(std::span<const float>(x.data() + t * s.cols, s.cols));
          const double tol = 1e-5 * std::sqrt(static_cast<double>(s.cols)) * max_w * max_x;
          for (int64_t r = 0; r < s.rows; ++r) {
            const double err = std::fabs(static_cast<double>(y[t * s.rows + r]) - ref[t * s.rows + r]);
            worst = std::max(worst, std::isnan(err) ? INFINITY : err / tol);
          }
        }
        EXPECT_LE(worst, 1.0);
      }
    }
  }
}

// ---- decoders ---------------------------------------------------------------------------------

TEST(Matmul, FastRowDecodersAreBitIdenticalToDecodeRow) {
  uint32_t seed = 2000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    std::vector<float> ref(s.cols), fast(s.cols);
    for (int64_t r = 0; r < s.rows; ++r) {
      decode_row(tw.w, r, ref.data());
      if (cpu_features().avx2) {
        std::fill(fast.begin(), fast.end(), NAN);
        cpu_detail::decode_row_avx2(tw.w, r, fast.data());
        EXPECT_TRUE(same_bits(ref.data(), fast.data(), s.cols)) << "avx2 row " << r;
      }
      if (cpu_features().avx512) {
        std::fill(fast.begin(), fast.end(), NAN);
        cpu_detail::decode_row_avx512(tw.w, r, fast.data());
        EXPECT_TRUE(same_bits(ref.data(), fast.data(), s.cols)) << "avx512 row " << r;
      }
    }
  }
}

// Decodes one row with every decoder and compares element by element (NaN matches any NaN).
void expect_decoders_agree(const WeightMatrix& w, const char* what) {
  SCOPED_TRACE(what);
  std::vector<float> ref(w.cols), fast(w.cols);
  decode_row(w, 0, ref.data());
  using Decoder = void (*)(const WeightMatrix&, int64_t, float*);
  std::vector<std::pair<const char*, Decoder>> decoders;
  if (cpu_features().avx2) decoders.emplace_back("avx2", &cpu_detail::decode_row_avx2);
  if (cpu_features().avx512) decoders.emplace_back("avx512", &cpu_detail::decode_row_avx512);
  for (const auto& [name, decode] : decoders) {
    decode(w, 0, fast.data());
    int mismatches = 0;
    for (int64_t c = 0; c < w.cols; ++c) {
      if (!same_value(ref[c], fast[c]) && ++mismatches <= 4) {
        ADD_FAILURE() << name << ": code at column " << c << " decodes to " << fast[c]
                      << ", decode_row gives " << ref[c];
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

TEST(Matmul, FastDecodersAgreeOnEveryF16AndBf16Code) {
  // One row holding all 65536 codes: zeros, subnormals, infinities and NaNs included.
  std::vector<uint8_t> codes(2 * 65536);
  for (uint32_t i = 0; i < 65536; ++i) {
    codes[2 * i] = static_cast<uint8_t>(i);
    codes[2 * i + 1] = static_cast<uint8_t>(i >> 8);
  }
  expect_decoders_agree(WeightMatrix{DType::kF16, 1, 65536, codes.data(), codes.size()}, "F16");
  expect_decoders_agree(WeightMatrix{DType::kBF16, 1, 65536, codes.data(), codes.size()}, "BF16");
}

// Every E4M3 code, the NaN codes 0x7F / 0xFF included, decodes the same on every path (this test found
// the AVX-512 decoder turning them into +-480 x scale; fixed).
TEST(Matmul, FastDecodersAgreeOnEveryFp8Code) {
  // All 256 codes twice over four 128-column blocks with scales 1, 0.25, 4, 0.5 (exact products).
  std::vector<uint8_t> codes(512);
  for (int i = 0; i < 512; ++i) codes[i] = static_cast<uint8_t>(i);
  const float scales[] = {1.0f, 0.25f, 4.0f, 0.5f};
  WeightMatrix w{DType::kF8_E4M3, 1, 512, codes.data(), 512, scales, 128, 128, 4};
  expect_decoders_agree(w, "F8_E4M3");
}

TEST(Matmul, AxpyRowAddsTheDecodedRow) {
  uint32_t seed = 3000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    std::mt19937 rng(++seed);
    std::vector<float> row(s.cols), scratch(s.cols);
    for (int64_t r : {int64_t{0}, s.rows / 2, s.rows - 1}) {
      const std::vector<float> y0 = random_floats(rng, s.cols);
      std::vector<float> y = y0, expected = y0;
      decode_row(tw.w, r, row.data());
      for (int64_t c = 0; c < s.cols; ++c) expected[c] += 0.75f * row[c];
      axpy_row(tw.w, r, 0.75f, y.data(), scratch.data());
      EXPECT_TRUE(same_bits(expected.data(), y.data(), s.cols)) << "row " << r;
    }
  }
}

// ---- invariance ---------------------------------------------------------------------------------

// A token's result must not depend on the batch it is in or the thread count: row t of a product of
// n tokens (with no pool and with pools of 1, 2, 3 threads) equals, bit for bit, the product of that
// token alone.
TEST(Matmul, ResultsAreBatchAndThreadInvariant) {
  uint32_t seed = 4000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    std::mt19937 rng(++seed);
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(kMaxTokens * s.cols));
    for (CpuIsa isa : supported_isas()) {
      SCOPED_TRACE(std::string(cpu_isa_name(isa)));
      std::vector<float> single(static_cast<size_t>(kMaxTokens * s.rows));
      for (int64_t t = 0; t < kMaxTokens; ++t) {
        matmul_isa(isa, tw.w, x.data() + t * s.cols, s.cols, 1, single.data() + t * s.rows, s.rows, nullptr);
      }
      for (int64_t n : kTokenCounts) {
        for (int threads : {0, 1, 2, 3}) {
          ThreadPool* pool = threads == 0 ? nullptr : &pool_of(threads);
          const std::vector<float> y = run_matmul(isa, tw.w, x.data(), n, pool);
          for (int64_t t = 0; t < n; ++t) {
            EXPECT_TRUE(same_bits(y.data() + t * s.rows, single.data() + t * s.rows, s.rows))
                << "n=" << n << " threads=" << threads << " token " << t;
          }
        }
      }
    }
  }
}

TEST(Matmul, RowRangeEqualsTheColumnsOfTheFullProduct) {
  uint32_t seed = 5000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    std::mt19937 rng(++seed);
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(kMaxTokens * s.cols));
    const std::pair<int64_t, int64_t> ranges[] = {{0, s.rows}, {3, s.rows - 2}, {5, 6}, {s.rows - 1, s.rows}};
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{17}, kMaxTokens}) {
      std::vector<float> full(static_cast<size_t>(n * s.rows));
      matmul(tw.w, x.data(), s.cols, n, full.data(), s.rows, nullptr);
      for (const auto& [r0, r1] : ranges) {
        if (r0 >= r1 || r1 > s.rows) continue;  // small matrices skip the ranges they cannot hold
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool_of(2)}) {
          const int64_t width = r1 - r0;
          std::vector<float> y(static_cast<size_t>(n * width), NAN);
          matmul_row_range(tw.w, r0, r1, x.data(), s.cols, n, y.data(), width, pool);
          for (int64_t t = 0; t < n; ++t) {
            EXPECT_TRUE(same_bits(y.data() + t * width, full.data() + t * s.rows + r0, width))
                << "rows [" << r0 << ", " << r1 << ") n=" << n << " token " << t << (pool ? " pool" : "");
          }
        }
      }
    }
  }
}

// Activations and outputs with strides wider than a row (rows of a larger buffer): the padding of x
// (NaN) is never read and the padding of y is never written.
TEST(Matmul, StridesWiderThanTheRowWork) {
  constexpr float kSentinel = 12345.0f;
  uint32_t seed = 6000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const TestWeight tw = make_weight(s, ++seed);
    std::mt19937 rng(++seed);
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(kMaxTokens * s.cols));
    const int64_t xs = s.cols + 7, ys = s.rows + 5;
    for (CpuIsa isa : supported_isas()) {
      for (int64_t n : {int64_t{1}, int64_t{4}, int64_t{5}, int64_t{17}}) {
        SCOPED_TRACE(std::string(cpu_isa_name(isa)) + " n=" + std::to_string(n));
        std::vector<float> xw(static_cast<size_t>(n * xs), NAN);
        for (int64_t t = 0; t < n; ++t) std::copy_n(x.data() + t * s.cols, s.cols, xw.data() + t * xs);
        std::vector<float> yw(static_cast<size_t>(n * ys), kSentinel);
        matmul_isa(isa, tw.w, xw.data(), xs, n, yw.data(), ys, &pool_of(2));
        const std::vector<float> packed = run_matmul(isa, tw.w, x.data(), n, nullptr);
        for (int64_t t = 0; t < n; ++t) {
          EXPECT_TRUE(same_bits(yw.data() + t * ys, packed.data() + t * s.rows, s.rows)) << "token " << t;
          for (int64_t i = s.rows; i < ys; ++i) EXPECT_EQ(yw[t * ys + i], kSentinel) << "token " << t;
        }
      }
    }
  }
}

TEST(Matmul, UnalignedWeightDataGivesTheSameBits) {
  uint32_t seed = 7000;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    ++seed;
    const TestWeight aligned = make_weight(s, seed);
    const TestWeight shifted = make_weight(s, seed, 1);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(shifted.w.data) % 2, 1u);
    std::mt19937 rng(seed);
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(5 * s.cols));
    for (CpuIsa isa : supported_isas()) {
      for (int64_t n : {int64_t{1}, int64_t{5}}) {
        EXPECT_EQ(run_matmul(isa, shifted.w, x.data(), n, nullptr),
                  run_matmul(isa, aligned.w, x.data(), n, nullptr))
            << cpu_isa_name(isa) << " n=" << n;
      }
    }
  }
}

// ---- W8A8 (Q8_0 weights x int8 activations, AVX-512 VNNI) ------------------------------------------

// The error of W8A8 against the exact product is the activation rounding: per 32-block at most
// d_x / 2 per element times |w|, plus f32 rounding. Checked against that bound, for odd and even block
// counts; results are bit-identical alone, batched and threaded.
TEST(Matmul, W8a8StaysWithinTheActivationRoundingBoundAndIsBatchInvariant) {
  if (!cpu_features().avx512_vnni) GTEST_SKIP() << "no AVX-512 VNNI";
  for (const Shape& s :
       {Shape{DType::kQ8_0, 37, 96}, Shape{DType::kQ8_0, 21, 64}, Shape{DType::kQ8_0, 6, 32}}) {
    TestWeight tw = make_weight(s, 5);
    tw.w.int8_activations = true;
    const std::vector<float> wf = decode_all(tw.w);
    std::mt19937 rng(9);
    for (int64_t n : kTokenCounts) {
      const std::vector<float> x = random_floats(rng, static_cast<size_t>(n * s.cols));
      const std::vector<float> got = run_matmul(CpuIsa::kAvx512, tw.w, x.data(), n, nullptr);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < s.rows; ++r) {
          double exact = 0, bound = 0;
          for (int64_t b = 0; b < s.cols / 32; ++b) {
            float amax = 0;
            for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[t * s.cols + b * 32 + i]));
            for (int i = 0; i < 32; ++i) {
              const double wv = wf[r * s.cols + b * 32 + i];
              exact += wv * x[t * s.cols + b * 32 + i];
              bound += std::fabs(wv) * (amax / 127.0 / 2.0 + 1e-6 * std::fabs(x[t * s.cols + b * 32 + i]));
            }
          }
          ASSERT_LE(std::fabs(got[t * s.rows + r] - exact), bound + 1e-5)
              << describe(s) << " n=" << n << " t=" << t;
        }
        // The same token alone gives the same bits.
        const std::vector<float> alone = run_matmul(CpuIsa::kAvx512, tw.w, x.data() + t * s.cols, 1, nullptr);
        ASSERT_TRUE(same_bits(alone.data(), got.data() + t * s.rows, s.rows))
            << describe(s) << " token " << t;
      }
      const std::vector<float> threaded = run_matmul(CpuIsa::kAvx512, tw.w, x.data(), n, &pool_of(3));
      ASSERT_TRUE(same_bits(threaded.data(), got.data(), n * s.rows)) << describe(s) << " threads";
    }
    // Without the flag the same weights take the exact path.
    tw.w.int8_activations = false;
    const std::vector<float> x = random_floats(rng, static_cast<size_t>(s.cols));
    const std::vector<float> exact = run_matmul(CpuIsa::kAvx512, tw.w, x.data(), 1, nullptr);
    tw.w.int8_activations = true;
    const std::vector<float> w8a8 = run_matmul(CpuIsa::kAvx512, tw.w, x.data(), 1, nullptr);
    EXPECT_FALSE(same_bits(exact.data(), w8a8.data(), s.rows)) << "W8A8 was not used";
  }
}

}  // namespace
}  // namespace hearth
