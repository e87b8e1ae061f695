#include "model/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

namespace hearth::tok {
namespace {

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

Status unicode_map(std::string_view in, int options, std::string* out) {
  utf8proc_uint8_t* buf = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                    static_cast<utf8proc_ssize_t>(in.size()), &buf,
                                    static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) return make_error(ErrorCode::kInvalidArgument, "normalization failed: {}", utf8proc_errmsg(n));
  out->assign(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  std::free(buf);
  return Status::ok();
}

}  // namespace

Status normalize(const std::vector<NormalizerStep>& steps, std::string_view in, std::string* out) {
  out->assign(in);
  std::string tmp;
  for (const auto& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
      case NormalizerStep::Kind::kNfd:
      case NormalizerStep::Kind::kNfkc:
      case NormalizerStep::Kind::kNfkd: {
        if (is_ascii(*out)) break;  // ASCII is invariant under every normalization form
        int opt = step.kind == NormalizerStep::Kind::kNfc    ? UTF8PROC_COMPOSE
                  : step.kind == NormalizerStep::Kind::kNfd  ? UTF8PROC_DECOMPOSE
                  : step.kind == NormalizerStep::Kind::kNfkc ? (UTF8PROC_COMPOSE | UTF8PROC_COMPAT)
                                                             : (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
        HEARTH_RETURN_IF_ERROR(unicode_map(*out, opt, &tmp));
        out->swap(tmp);
        break;
      }
      case NormalizerStep::Kind::kLowercase: {
        tmp.clear();
        const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(out->data());
        utf8proc_ssize_t i = 0, n = static_cast<utf8proc_ssize_t>(out->size());
        while (i < n) {
          utf8proc_int32_t cp;
          utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
          if (len <= 0) return make_error(ErrorCode::kInvalidArgument, "invalid UTF-8 at byte {}", i);
          utf8proc_uint8_t enc[4];
          utf8proc_ssize_t el = utf8proc_encode_char(utf8proc_tolower(cp), enc);
          tmp.append(reinterpret_cast<const char*>(enc), static_cast<size_t>(el));
          i += len;
        }
        out->swap(tmp);
        break;
      }
      case NormalizerStep::Kind::kReplace: {
        if (step.pattern.empty()) break;
        tmp.clear();
        size_t pos = 0;
        for (size_t hit; (hit = out->find(step.pattern, pos)) != std::string::npos;
             pos = hit + step.pattern.size()) {
          tmp.append(*out, pos, hit - pos);
          tmp += step.content;
        }
        tmp.append(*out, pos, std::string::npos);
        out->swap(tmp);
        break;
      }
      case NormalizerStep::Kind::kPrepend:
        if (!out->empty()) out->insert(0, step.content);
        break;
    }
  }
  return Status::ok();
}

}  // namespace hearth::tok
