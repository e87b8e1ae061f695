// Fuzz target: arbitrary bytes as tokenizer.json. Loading must fail cleanly or produce a tokenizer
// that encodes and decodes without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view doc(reinterpret_cast<const char*>(data), size);
  auto t = hearth::tok::Tokenizer::from_json(doc, "");
  if (!t.is_ok()) return 0;
  auto ids = (*t)->encode("Hello world! 你好 <s> 123 \n\n  x");
  if (ids.is_ok()) (void)(*t)->decode(*ids);
  return 0;
}
