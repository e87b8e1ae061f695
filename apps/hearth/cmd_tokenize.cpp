// hearth tokenize: text on stdin -> {"ids":[...]}; with --decode, {"ids":[...]} -> {"text":"..."}.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "commands.h"
#include "core/json_guard.h"
#include "model/tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct TokenizeArgs {
  std::string model;
  bool decode = false;
  bool no_special = false;
  bool no_parse_special = false;
  bool skip_special = false;
};

int run_tokenize(const TokenizeArgs& a) {
  auto tok = load_tokenizer_for(a.model);
  if (!tok.is_ok()) {
    std::fprintf(stderr, "error: %s\n", tok.status().message().c_str());
    return 1;
  }
  std::string input = read_stdin();
  if (!a.decode) {
    tok::EncodeOptions opt;
    opt.add_special_tokens = !a.no_special;
    opt.parse_special = !a.no_parse_special;
    auto ids = (*tok)->encode(input, opt);
    if (!ids.is_ok()) {
      std::fprintf(stderr, "error: stdin: %s\n", ids.status().message().c_str());
      return 1;
    }
    nlohmann::json out{{"ids", *ids}};
    fmt::print("{}\n", out.dump());
    return 0;
  }
  Status guard = check_json_limits(input, {.max_bytes = 256ull << 20, .max_depth = 8}, "stdin");
  if (!guard.is_ok()) {
    std::fprintf(stderr, "error: %s\n", guard.message().c_str());
    return 1;
  }
  nlohmann::json in = nlohmann::json::parse(input, nullptr, false);
  if (in.is_discarded() || !in.is_object() || !in.contains("ids") || !in["ids"].is_array()) {
    std::fprintf(stderr, "error: stdin: expected a JSON object {\"ids\": [int, ...]}\n");
    return 1;
  }
  std::vector<int32_t> ids;
  ids.reserve(in["ids"].size());
  for (size_t i = 0; i < in["ids"].size(); ++i) {
    const auto& v = in["ids"][i];
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
      std::fprintf(stderr, "error: stdin: ids[%zu] is not a 32-bit integer\n", i);
      return 1;
    }
    ids.push_back(v.get<int32_t>());
  }
  tok::DecodeOptions opt;
  opt.skip_special_tokens = a.skip_special;
  auto text = (*tok)->decode(ids, opt);
  if (!text.is_ok()) {
    std::fprintf(stderr, "error: %s\n", text.status().message().c_str());
    return 1;
  }
  nlohmann::json out{{"text", *text}};
  fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, RunFn* run) {
  auto args = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize",
                                 "Encode UTF-8 text from stdin to {\"ids\":[...]}, or with --decode turn "
                                 "{\"ids\":[...]} into {\"text\":...}");
  cmd->add_option("--model", args->model,
                  "Model directory (tokenizer.json [+ tokenizer_config.json]) or .gguf file")
      ->required();
  cmd->add_flag("--decode", args->decode, "Decode {\"ids\":[...]} from stdin instead of encoding text");
  cmd->add_flag("--no-special", args->no_special, "Encode without the BOS/EOS the tokenizer adds by default");
  cmd->add_flag("--no-parse-special", args->no_parse_special,
                "Treat special-token text in the input as plain text (split_special_tokens)");
  cmd->add_flag("--skip-special", args->skip_special, "When decoding, drop special tokens");
  cmd->callback([run, args] { *run = [args] { return run_tokenize(*args); }; });
}

}  // namespace hearth::app
