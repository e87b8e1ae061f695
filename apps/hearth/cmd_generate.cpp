// hearth generate: load a model, run one prompt on the CPU engine, print the continuation as it is
// produced (or one JSON object with --json: ids, text, per-step logprobs and timings).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "commands.h"
#include "core/json_guard.h"
#include "engine/generator.h"
#include "engine/model_runner.h"
#include "kernels/cpu/cpu_features.h"
#include "model/generation_config.h"
#include "model/tokenizer/detokenizer.h"

namespace hearth::app {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  int64_t max_tokens = 16;
  std::optional<float> temperature, top_p, min_p;
  std::optional<int32_t> top_k;
  float repetition_penalty = 1.0f, frequency_penalty = 0.0f, presence_penalty = 0.0f;
  std::optional<uint64_t> seed;
  int32_t top_logprobs = 0;
  DeviceFlags dev;
  std::string quantize = "none";
  int threads = 0;
  int64_t prefill_chunk = 512;
  bool json = false;
  bool ignore_eos = false;
  bool no_generation_config = false;
  bool int8_activations = false;
};

int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  return 1;
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument, "--prompt-ids: '{}' is not a token id", item);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "--prompt-ids: no ids given");
  return ids;
}

int run_generate(const GenerateArgs& a) {
  if (a.prompt.empty() == a.prompt_ids.empty()) {
    std::fprintf(stderr, "error: give exactly one of --prompt and --prompt-ids\n");
    return 2;
  }
  RunnerOptions ropt;
  if (int rc = apply_device_flags(a.dev, &ropt); rc != 0) return rc;
  ropt.threads = a.threads;
  ropt.weights.int8_activations = a.int8_activations;
  if (int rc = apply_quantize_flag(a.quantize, &ropt); rc != 0) return rc;
  auto tok = load_tokenizer_for(a.model);
  if (!tok.is_ok()) return fail(tok.status());
  std::vector<int32_t> prompt;
  if (!a.prompt_ids.empty()) {
    auto ids = parse_ids(a.prompt_ids);
    if (!ids.is_ok()) return fail(ids.status());
    prompt = std::move(*ids);
  } else {
    auto ids = (*tok)->encode(a.prompt);
    if (!ids.is_ok()) return fail(ids.status().with_context("--prompt"));
    prompt = std::move(*ids);
  }
  ropt.kv.max_tokens = static_cast<int64_t>(prompt.size()) + a.max_tokens;
  ropt.kv.num_blocks = ropt.kv.blocks();
  ropt.gpu.max_seqs = 1;
  ropt.gpu.max_batch_tokens = std::max<int64_t>(a.prefill_chunk, 1);

  const auto t0 = std::chrono::steady_clock::now();
  if (!a.json) std::fprintf(stderr, "loading %s ...\n", a.model.c_str());
  auto runner = ModelRunner::load(a.model, ropt);
  if (!runner.is_ok()) return fail(runner.status());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ModelRunner& r = **runner;
  if (!a.json && r.device() == RunnerDevice::kCuda) {
    std::fprintf(stderr, "loaded %s in %.2f s on %s\n",
                 std::string(architecture_name(r.spec().architecture)).c_str(), load_s,
                 describe_runner(r).c_str());
  } else if (!a.json) {
    std::fprintf(stderr, "loaded %s in %.2f s: %.2f GiB mapped, %.2f GiB converted; %d threads, %s kernels\n",
                 std::string(architecture_name(r.spec().architecture)).c_str(), load_s,
                 static_cast<double>(r.weights().mapped_bytes()) / (1 << 30),
                 static_cast<double>(r.weights().owned_bytes()) / (1 << 30), (*runner)->pool().size(),
                 std::string(cpu_isa_name(cpu_isa())).c_str());
  }

  GenerationDefaults defaults;
  if (!a.no_generation_config) {
    auto gc = load_generation_config(a.model);
    if (!gc.is_ok()) return fail(gc.status());
    defaults = std::move(*gc);
  }
  GenerateRequest req;
  req.prompt = prompt;
  req.max_tokens = a.max_tokens;
  SamplingParams& sp = req.sampling;
  sp.temperature = a.temperature.value_or(defaults.greedy ? 0.0f : defaults.temperature.value_or(1.0f));
  sp.top_p = a.top_p.value_or(defaults.top_p.value_or(1.0f));
  sp.top_k = a.top_k.value_or(defaults.top_k.value_or(0));
  sp.min_p = a.min_p.value_or(0.0f);
  sp.repetition_penalty = a.repetition_penalty;
  sp.frequency_penalty = a.frequency_penalty;
  sp.presence_penalty = a.presence_penalty;
  sp.seed = a.seed;
  sp.top_logprobs = a.top_logprobs;
  if (Status st = sp.validate(); !st.is_ok()) {
    std::fprintf(stderr, "error: %s\n", st.message().c_str());
    return 2;
  }
  if (!a.ignore_eos) {
    for (int64_t e : r.spec().eos_token_ids) req.stop_ids.push_back(static_cast<int32_t>(e));
    for (int32_t e : defaults.eos) req.stop_ids.push_back(e);
    if ((*tok)->eos_id()) req.stop_ids.push_back(*(*tok)->eos_id());
  }

  tok::IncrementalDetokenizer detok(*tok);
  GenerateOptions gopt;
  gopt.max_batched_tokens = a.prefill_chunk;
  if (!a.json) {
    gopt.on_token = [&](size_t, const SampledToken& t) {
      std::string delta;
      if (detok.push(t.id, &delta).is_ok() && !delta.empty()) {
        std::fwrite(delta.data(), 1, delta.size(), stdout);
        std::fflush(stdout);
      }
    };
  }
  GenerateStats stats;
  auto out = generate(**runner, std::span<const GenerateRequest>(&req, 1), gopt, &stats);
  if (!out.is_ok()) return fail(out.status());
  const GenerateResult& res = (*out)[0];
  auto rate = [](int64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  // The first decode token comes out of the prefill step, so decode steps produced ids.size() - 1 tokens.
  if (a.json) {
    auto text = (*tok)->decode(res.ids);
    nlohmann::json steps = nlohmann::json::array();
    for (const SampledToken& s : res.steps) {
      nlohmann::json top = nlohmann::json::array();
      for (const TokenLogprob& t : s.top) top.push_back({t.id, t.logprob});
      steps.push_back({{"id", s.id}, {"logprob", s.logprob}, {"top", top}});
    }
    nlohmann::json j{{"prompt_ids", prompt},
                     {"ids", res.ids},
                     {"text", text.is_ok() ? *text : std::string()},
                     {"finish_reason", res.finish_reason},
                     {"steps", steps},
                     {"timings",
                      {{"load_s", load_s},
                       {"prefill_tokens", stats.prefill_tokens},
                       {"prefill_s", stats.prefill_seconds},
                       {"prefill_tok_s", rate(stats.prefill_tokens, stats.prefill_seconds)},
                       {"decode_tokens", stats.decode_tokens},
                       {"decode_s", stats.decode_seconds},
                       {"decode_tok_s", rate(stats.decode_tokens, stats.decode_seconds)},
                       {"threads", (*runner)->pool().size()},
                       {"kernels", std::string(cpu_isa_name(cpu_isa()))}}}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return 0;
  }
  const std::string rest = detok.finish();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "[%zu prompt tokens: %.1f tok/s prefill; %zu generated (%s): %.1f tok/s decode]\n",
               prompt.size(), rate(stats.prefill_tokens, stats.prefill_seconds), res.ids.size(),
               res.finish_reason.c_str(), rate(stats.decode_tokens, stats.decode_seconds));
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, RunFn* run) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate",
                                 "Run a prompt through a model on the CPU engine and print the continuation");
  cmd->add_option("--model,-m", a->model, "Model directory (config.json + safetensors) or .gguf file")
      ->required();
  cmd->add_option("--prompt,-p", a->prompt,
                  "Prompt text (tokenized with the model's tokenizer, BOS added as it says)");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids, e.g. 0,1234,56");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", a->temperature,
                  "Sampling temperature; 0 = greedy (default: generation_config, else 1)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass in (0, 1]");
  cmd->add_option("--top-k", a->top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--min-p", a->min_p, "Drop tokens below min_p x the top probability");
  cmd->add_option("--repetition-penalty", a->repetition_penalty,
                  "Penalty for prompt and output tokens (1 = off)");
  cmd->add_option("--frequency-penalty", a->frequency_penalty, "OpenAI frequency penalty in [-2, 2]");
  cmd->add_option("--presence-penalty", a->presence_penalty, "OpenAI presence penalty in [-2, 2]");
  cmd->add_option("--seed", a->seed, "Seed of the sampler's random generator (reproducible output)");
  cmd->add_option("--top-logprobs", a->top_logprobs, "Report the k most likely tokens per step (0-20)")
      ->check(CLI::Range(0, 20));
  add_device_flags(cmd, &a->dev);
  cmd->add_option("--quantize", a->quantize,
                  "Quantize linear weights at load: none, q8_0 (CPU) or fp8 (CUDA: e4m3, one scale per row)");
  cmd->add_option("--threads,-t", a->threads, "CPU threads (0 = all)")->check(CLI::Range(0, 1024));
  cmd->add_option("--prefill-chunk", a->prefill_chunk,
                  "Tokens computed per forward step (prompts longer than this are prefilled in chunks)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag(
      "--int8-activations", a->int8_activations,
      "Q8_0 weights multiply activations quantized to int8 per 32-block (W8A8 as llama.cpp; AVX-512 VNNI): "
      "faster decode, not bit-exact");
  cmd->add_flag("--json", a->json, "Print one JSON object: prompt_ids, ids, text, steps (logprobs), timings");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--no-generation-config", a->no_generation_config,
                "Ignore the model's generation_config.json sampling defaults");
  cmd->callback([a, run] { *run = [a] { return run_generate(*a); }; });
}

}  // namespace hearth::app
