// CPU engine benchmark: prefill and decode tokens/s of one sequence on a model, next to the machine's
// memory bandwidth measured in the same run with the same thread pool, so decode speed can be read
// against its physical bound (weight bytes read per token / bandwidth). Also reports peak RSS against
// the weights + KV pool. Usage and recorded results: docs/performance.md.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/model_runner.h"
#include "kernels/cpu/cpu_features.h"

namespace hearth {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

// Sum of n floats with 4 independent 256-bit accumulators and the same 2 KiB software prefetch the
// weight decoders use: far faster than memory, so it measures how fast the cores can stream reads.
// AVX2 when present (every CPU the fast kernels target).
__attribute__((target("avx2"))) float read_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 512), _MM_HINT_T0);  // 2 KiB ahead, as the decoders
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 528), _MM_HINT_T0);
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float r = 0;
  for (float v : t) r += v;
  for (; i < n; ++i) r += p[i];
  return r;
}

float read_sum(const float* p, int64_t n) {
  if (cpu_features().avx2) return read_sum_avx2(p, n);
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += p[i + k];
  float r = 0;
  for (float v : acc) r += v;
  for (; i < n; ++i) r += p[i];
  return r;
}

struct Bandwidth {
  double copy_gbs = 0;  // (read + write) bytes / s of memcpy, STREAM "copy" convention
  double read_gbs = 0;  // bytes / s of a vectorised sum over the buffer
};

// Each thread copies / reads its own contiguous part of a buffer much larger than the caches.
Bandwidth measure_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  std::vector<float> a(bytes / 4, 1.0f), b(bytes / 4, 0.0f);
  const int64_t n = static_cast<int64_t>(a.size());
  std::vector<double> copy, read;
  std::vector<double> sums(pool.size() * 16, 0.0);
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    pool.parallel_for(n, [&](int64_t s, int64_t e) { std::memcpy(b.data() + s, a.data() + s, (e - s) * 4); });
    copy.push_back(2.0 * static_cast<double>(bytes) / (now() - t0));
    t0 = now();
    pool.parallel_for(n, [&](int64_t s, int64_t e) {
      sums[(s * pool.size() / n) * 16] += read_sum(a.data() + s, e - s);  // keep the loop alive
    });
    read.push_back(static_cast<double>(bytes) / (now() - t0));
  }
  // Best of the repetitions, as STREAM reports: the rate the machine can reach (these VMs are noisy).
  return {*std::max_element(copy.begin(), copy.end()) / 1e9,
          *std::max_element(read.begin(), read.end()) / 1e9};
}

}  // namespace
}  // namespace hearth

int main(int argc, char** argv) {
  using namespace hearth;
  CLI::App app{"hearth CPU engine benchmark: prefill/decode tok/s against memory bandwidth"};
  std::string model, quantize = "none", json_out;
  int threads = 0, reps = 3;
  int64_t prompt_tokens = 128, decode_tokens = 32;
  size_t bw_mib = 1024;
  app.add_option("--model,-m", model, "Model directory or .gguf")->required();
  app.add_option("--quantize", quantize, "none or q8_0 (quantize linear weights at load)");
  app.add_option("--threads,-t", threads, "Threads (0 = all)");
  app.add_option("--prompt-tokens", prompt_tokens, "Prompt length for the prefill measurement");
  app.add_option("--decode-tokens", decode_tokens, "Tokens decoded per repetition");
  app.add_option("--reps", reps, "Repetitions (the median is reported)");
  app.add_option("--bandwidth-mib", bw_mib, "Buffer size of the bandwidth measurement");
  bool int8_act = false;
  app.add_flag("--int8-activations", int8_act,
               "Q8_0 weights multiply int8-quantized activations (W8A8, VNNI)");
  app.add_option("--json", json_out, "Also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  RunnerOptions opt;
  opt.threads = threads;
  opt.kv.max_tokens = prompt_tokens + decode_tokens + 16;
  if (quantize == "q8_0") opt.weights.quantize = LoadQuantization::kQ8_0;
  opt.weights.int8_activations = int8_act;
  opt.prefix_caching = false;  // every repetition computes its whole prompt
  const double t0 = now();
  auto runner = ModelRunner::load(model, opt);
  if (!runner.is_ok()) {
    fmt::print(stderr, "error: {}\n", runner.status().message());
    return 1;
  }
  ModelRunner& r = **runner;
  const double load_s = now() - t0;
  const uint64_t weight_bytes = r.weights().mapped_bytes() + r.weights().owned_bytes();
  // Bytes one decode token reads: every linear weight once (the embedding row is negligible; for
  // untied models the embedding table is mapped but not read).
  const uint64_t embed_bytes = r.checkpoint().find("model.embed_tokens.weight")
                                   ? r.checkpoint().find("model.embed_tokens.weight")->data.size()
                                   : 0;
  uint64_t per_token = weight_bytes - (quantize == "q8_0" ? 0 : embed_bytes);
  if (quantize == "q8_0") per_token = r.weights().owned_bytes();  // Q8 copies are what decode reads
  fmt::print("model {} ({}), {} threads, {} kernels, loaded in {:.1f} s\n", model,
             architecture_name(r.spec().architecture), r.pool().size(), cpu_isa_name(cpu_isa()), load_s);

  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (int64_t i = 0; i < prompt_tokens; ++i)
    prompt[i] = static_cast<int32_t>((i * 7919 + 13) % r.spec().vocab_size);
  std::vector<double> prefill, decode;
  for (int rep = 0; rep < reps + 1; ++rep) {  // the first repetition warms the page cache and is dropped
    GenerateRequest g;
    g.prompt = prompt;
    g.max_tokens = decode_tokens + 1;
    g.sampling.temperature = 0;
    GenerateStats st;
    GenerateOptions go;
    go.max_batched_tokens = prompt_tokens;
    auto out = generate(r, std::span<const GenerateRequest>(&g, 1), go, &st);
    if (!out.is_ok()) {
      fmt::print(stderr, "error: {}\n", out.status().message());
      return 1;
    }
    if (rep == 0) continue;
    prefill.push_back(static_cast<double>(st.prefill_tokens) / st.prefill_seconds);
    decode.push_back(static_cast<double>(st.decode_tokens) / st.decode_seconds);
  }
  const int64_t rss = peak_rss_bytes();  // before the bandwidth buffers exist
  const Bandwidth bw = measure_bandwidth(r.pool(), bw_mib << 20, 9);
  fmt::print("memory bandwidth ({} MiB buffers): copy {:.1f} GB/s (read+write), read {:.1f} GB/s\n", bw_mib,
             bw.copy_gbs, bw.read_gbs);
  const double pre = median(prefill), dec = median(decode);
  const double achieved = dec * static_cast<double>(per_token) / 1e9;
  const double bound = bw.read_gbs * 1e9 / static_cast<double>(per_token);
  const int64_t kv_bytes = static_cast<int64_t>(r.kv().bytes());
  fmt::print("prefill {} tokens: {:.1f} tok/s (median of {})\n", prompt_tokens, pre, reps);
  fmt::print(
      "decode: {:.2f} tok/s; {:.2f} GB of weights per token -> {:.1f} GB/s achieved = {:.0f}% of read "
      "bandwidth "
      "(bound {:.2f} tok/s)\n",
      dec, static_cast<double>(per_token) / 1e9, achieved, 100.0 * achieved / bw.read_gbs, bound);
  fmt::print(
      "peak RSS {:.2f} GiB; weights {:.2f} GiB ({:.2f} mapped + {:.2f} converted) + KV pool {:.3f} GiB\n",
      rss / 1073741824.0, weight_bytes / 1073741824.0, r.weights().mapped_bytes() / 1073741824.0,
      r.weights().owned_bytes() / 1073741824.0, kv_bytes / 1073741824.0);
  if (!json_out.empty()) {
    nlohmann::json j{{"model", model},
                     {"quantize", quantize},
                     {"int8_activations", int8_act},
                     {"threads", r.pool().size()},
                     {"kernels", std::string(cpu_isa_name(cpu_isa()))},
                     {"prompt_tokens", prompt_tokens},
                     {"prefill_tok_s", pre},
                     {"decode_tok_s", dec},
                     {"bytes_per_token", per_token},
                     {"achieved_gb_s", achieved},
                     {"copy_gb_s", bw.copy_gbs},
                     {"read_gb_s", bw.read_gbs},
                     {"decode_bound_tok_s", bound},
                     {"peak_rss_bytes", rss},
                     {"weight_bytes", weight_bytes},
                     {"kv_bytes", kv_bytes}};
    std::ofstream(json_out) << j.dump(2) << "\n";
  }
  return 0;
}
