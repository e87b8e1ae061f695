#include "model/model_files.h"

#include <filesystem>

#include "model/gguf.h"
#include "model/gguf_tokenizer.h"

namespace hearth {

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

Result<ChatTemplateConfig> load_chat_template_for(const std::string& path, const tok::Tokenizer& tokenizer) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_chat_template_config(path);
  ChatTemplateConfig c;
  c.origin = path;
  if (!tokenizer.chat_template().empty()) c.default_template = tokenizer.chat_template();
  if (!tokenizer.bos_token().empty()) c.bos_token = tokenizer.bos_token();
  if (!tokenizer.eos_token().empty()) c.eos_token = tokenizer.eos_token();
  return c;
}

}  // namespace hearth
