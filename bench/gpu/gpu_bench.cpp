// GPU engine benchmark (bench/gpu/run.sh runs it on the H100/H200 host): batch-1 decode tokens/s with the
// bytes-moved bound, time to first token of a long prompt, and static-batch throughput, all through the
// engine's generate() loop (scheduler + sampler included). One JSON object per measurement on stdout.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include "engine/generator.h"
#include "engine/model_runner.h"

namespace hearth {
namespace {

// The device's copy bandwidth (read + write bytes per second) over a buffer far larger than L2.
double measure_copy_bandwidth() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  std::vector<float> ms;
  for (int i = 0; i < 5; ++i) {
    cudaEventRecord(e0);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaFree(a);
  cudaFree(b);
  std::sort(ms.begin(), ms.end());
  return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] / 1e3);
}

std::vector<int32_t> prompt_of(int64_t len, int64_t vocab, int64_t salt) {
  std::vector<int32_t> p;
  for (int64_t j = 0; j < len; ++j) p.push_back(static_cast<int32_t>((salt * 7919 + j * 131 + 17) % vocab));
  return p;
}

GenerateRequest request(int64_t in, int64_t out, int64_t vocab, int64_t salt) {
  GenerateRequest g;
  g.prompt = prompt_of(in, vocab, salt);
  g.max_tokens = out;
  g.sampling.temperature = 0.0f;
  return g;
}

struct TimedRun {
  int64_t tokens = 0;  // generated
  double seconds = 0;  // wall
  double step_ms = 0;  // mean over the steps
};

// generate() on `reqs`, timed; nullopt (the error printed) when it fails.
std::optional<TimedRun> timed_generate(ModelRunner& runner, const std::vector<GenerateRequest>& reqs,
                                       const GenerateOptions& options) {
  GenerateStats st;
  const auto a = std::chrono::steady_clock::now();
  auto res = generate(runner, reqs, options, &st);
  if (!res.is_ok()) {
    std::fprintf(stderr, "error: %s\n", res.status().message().c_str());
    return std::nullopt;
  }
  TimedRun r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  for (const auto& x : *res) r.tokens += static_cast<int64_t>(x.ids.size());
  r.step_ms = st.decode_seconds * 1e3 / std::max<double>(1.0, static_cast<double>(st.steps));
  return r;
}

int run(int argc, char** argv) {
  CLI::App app{"hearth GPU engine benchmark"};
  std::string model, label;
  int64_t decode_tokens = 256, ttft_prompt = 2000, batch_in = 128, batch_out = 256, sampled_batch = 256;
  std::vector<int64_t> batches{64, 256};
  bool no_graphs = false, fp8 = false, host_sampler = false;
  double util = 0.85;
  app.add_option("--model", model, "Model directory")->required();
  app.add_option("--label", label, "Name printed with each result");
  app.add_option("--decode-tokens", decode_tokens, "Tokens decoded in the batch-1 run")
      ->capture_default_str();
  app.add_option("--ttft-prompt", ttft_prompt, "Prompt length of the TTFT run (0: skip)")
      ->capture_default_str();
  app.add_option("--batches", batches, "Static batch sizes of the throughput runs")->capture_default_str();
  app.add_option("--batch-in", batch_in, "Prompt tokens per sequence in the throughput runs")
      ->capture_default_str();
  app.add_option("--batch-out", batch_out, "Output tokens per sequence in the throughput runs")
      ->capture_default_str();
  app.add_option("--sampled-batch", sampled_batch,
                 "Batch of the sampled-decoding runs (device vs host sampler; 0: skip)")
      ->capture_default_str();
  app.add_flag(
      "--compare-host-sampler", host_sampler,
      "After the device-sampled run, the same with every row drawn by the host Sampler (slow: minutes at "
      "batch 256)");
  app.add_flag("--no-cuda-graphs", no_graphs, "Launch kernels one by one");
  app.add_flag("--fp8", fp8, "Quantize the linear weights to FP8 e4m3 at load (one scale per row)");
  app.add_option("--gpu-memory-utilization", util, "")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (label.empty()) label = model;

  RunnerOptions o;
  o.device = RunnerDevice::kCuda;
  o.gpu.gpu_memory_utilization = util;
  o.gpu.cuda_graphs = !no_graphs;
  o.gpu.fp8_weights = fp8;
  int64_t max_batch = 1;
  for (int64_t b : batches) max_batch = std::max(max_batch, b);
  o.gpu.max_seqs = max_batch;
  o.gpu.max_batch_tokens = std::max<int64_t>({8192, ttft_prompt, max_batch});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = ModelRunner::load(model, o);
  if (!r.is_ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
    return 1;
  }
  ModelRunner& runner = **r;
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const DeviceMemoryReport mem = runner.device_model()->memory();
  const int64_t vocab = runner.spec().vocab_size;
  const double bw = measure_copy_bandwidth();
  std::printf(
      "{\"label\":\"%s\",\"what\":\"load\",\"device\":\"%s\",\"seconds\":%.2f,\"weight_bytes\":%llu,"
      "\"kv_bytes\":%llu,\"copy_bandwidth_gbs\":%.1f}\n",
      label.c_str(), mem.device_name.c_str(), load_s, static_cast<unsigned long long>(mem.weight_bytes),
      static_cast<unsigned long long>(mem.kv_bytes), bw / 1e9);
  std::fflush(stdout);

  GenerateOptions go;
  go.max_batched_tokens = o.gpu.max_batch_tokens;
  go.max_num_seqs = max_batch;

  // Batch-1 decode: the median of three runs (the first also captures the graphs).
  {
    std::vector<double> rates;
    for (int rep = 0; rep < 4; ++rep) {
      const GenerateRequest g = request(16, decode_tokens, vocab, rep);
      GenerateStats st;
      auto res = generate(runner, std::span<const GenerateRequest>(&g, 1), go, &st);
      if (!res.is_ok()) {
        std::fprintf(stderr, "error: %s\n", res.status().message().c_str());
        return 1;
      }
      if (rep > 0) rates.push_back(static_cast<double>(st.decode_tokens) / st.decode_seconds);
    }
    std::sort(rates.begin(), rates.end());
    const double tps = rates[rates.size() / 2];
    // Bytes one decode step must read: every weight once (the embedding row aside) plus the KV so far.
    const double bytes = static_cast<double>(mem.weight_bytes);
    std::printf(
        "{\"label\":\"%s\",\"what\":\"decode_b1\",\"tokens\":%lld,\"tok_per_s\":%.1f,\"step_ms\":%.3f,"
        "\"weight_gb_per_s\":%.1f,\"fraction_of_copy_bw\":%.3f,\"bound_tok_per_s\":%.1f}\n",
        label.c_str(), static_cast<long long>(decode_tokens), tps, 1e3 / tps, bytes * tps / 1e9,
        bw > 0 ? bytes * tps / bw : 0.0, bw > 0 ? bw / bytes : 0.0);
    std::fflush(stdout);
  }

  // TTFT of a long prompt at no load: prefill + the first token (median of three).
  if (ttft_prompt > 0) {
    std::vector<double> secs;
    for (int rep = 0; rep < 4; ++rep) {
      const GenerateRequest g = request(ttft_prompt, 1, vocab, 100 + rep);
      const auto a = std::chrono::steady_clock::now();
      auto res = generate(runner, std::span<const GenerateRequest>(&g, 1), go);
      if (!res.is_ok()) {
        std::fprintf(stderr, "error: %s\n", res.status().message().c_str());
        return 1;
      }
      if (rep > 0)
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(secs.begin(), secs.end());
    std::printf("{\"label\":\"%s\",\"what\":\"ttft\",\"prompt_tokens\":%lld,\"ms\":%.2f}\n", label.c_str(),
                static_cast<long long>(ttft_prompt), secs[secs.size() / 2] * 1e3);
    std::fflush(stdout);
  }

  // Static batches: all requests submitted at once, continuous batching from there.
  for (int64_t b : batches) {
    std::vector<GenerateRequest> reqs;
    for (int64_t i = 0; i < b; ++i) reqs.push_back(request(batch_in, batch_out, vocab, 1000 + i));
    const auto run = timed_generate(runner, reqs, go);
    if (!run) return 1;
    std::printf(
        "{\"label\":\"%s\",\"what\":\"batch\",\"batch\":%lld,\"in\":%lld,\"out\":%lld,\"output_tokens\":%lld,"
        "\"seconds\":%.3f,\"output_tok_per_s\":%.1f,\"decode_step_ms\":%.3f}\n",
        label.c_str(), static_cast<long long>(b), static_cast<long long>(batch_in),
        static_cast<long long>(batch_out), static_cast<long long>(run->tokens), run->seconds,
        static_cast<double>(run->tokens) / run->seconds, run->step_ms);
    std::fflush(stdout);
  }

  // Sampled decoding at the largest batch (temperature 0.8, top_p 0.95, 5 top logprobs): on the device vs
  // every logits row copied back and drawn by the host Sampler (generate() samples rows one after another;
  // with --compare-host-sampler only).
  if (sampled_batch > 0) {
    const int64_t b = std::min(sampled_batch, max_batch);
    for (const bool on_device : {true, false}) {
      if (!on_device && !host_sampler) break;
      std::vector<GenerateRequest> reqs;
      for (int64_t i = 0; i < b; ++i) {
        GenerateRequest g = request(batch_in, batch_out, vocab, 2000 + i);
        g.sampling.temperature = 0.8f;
        g.sampling.top_p = 0.95f;
        g.sampling.top_logprobs = 5;
        g.sampling.seed = static_cast<uint64_t>(i);
        reqs.push_back(std::move(g));
      }
      GenerateOptions so = go;
      so.device_sampling = on_device;
      const auto run = timed_generate(runner, reqs, so);
      if (!run) return 1;
      std::printf(
          "{\"label\":\"%s\",\"what\":\"sampled_batch\",\"sampler\":\"%s\",\"batch\":%lld,"
          "\"output_tokens\":%lld,\"seconds\":%.3f,\"output_tok_per_s\":%.1f,\"decode_step_ms\":%.3f}\n",
          label.c_str(), on_device ? "device" : "host", static_cast<long long>(b),
          static_cast<long long>(run->tokens), run->seconds, static_cast<double>(run->tokens) / run->seconds,
          run->step_ms);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace hearth

int main(int argc, char** argv) {
  return hearth::run(argc, argv);
}
