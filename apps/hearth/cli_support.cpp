// Helpers shared by the subcommands: reading stdin, loading a tokenizer from a model path.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "model/gguf.h"
#include "model/gguf_tokenizer.h"

namespace hearth::app {

std::string read_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) s.append(buf, n);
  return s;
}

Result<std::shared_ptr<const tok::Tokenizer>> load_tokenizer_for(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return tok::Tokenizer::load_dir(path);
  if (fs::is_regular_file(path, ec) && fs::path(path).filename() == "tokenizer.json") {
    return tok::Tokenizer::load_dir(fs::path(path).parent_path().string());
  }
  if (!fs::exists(path, ec)) return make_error(ErrorCode::kNotFound, "{}: no such file or directory", path);
  if (fs::path(path).extension() == ".gguf") {
    HEARTH_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
    auto data = read_gguf_tokenizer(*file);
    if (!data.is_ok()) return data.status().with_context(path);
    auto t = tok::Tokenizer::from_gguf(*data);
    if (!t.is_ok()) return t.status().with_context(path);
    return t;
  }
  return make_error(ErrorCode::kUnsupported,
                    "{}: expected a model directory with tokenizer.json, or a .gguf file", path);
}

}  // namespace hearth::app
