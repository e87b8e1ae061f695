#include <filesystem>

#include "commands.h"

namespace hearth::app {

Result<std::shared_ptr<const tok::Tokenizer>> load_tokenizer_for(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return tok::Tokenizer::load_dir(path);
  if (fs::is_regular_file(path, ec) && fs::path(path).filename() == "tokenizer.json") {
    return tok::Tokenizer::load_dir(fs::path(path).parent_path().string());
  }
  if (!fs::exists(path, ec)) return make_error(ErrorCode::kNotFound, "{}: no such file or directory", path);
  return make_error(
      ErrorCode::kUnsupported,
      "{}: expected a model directory with tokenizer.json (GGUF tokenizers: see docs/tokenizer.md)", path);
}

}  // namespace hearth::app
