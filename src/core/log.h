#pragma once
// Minimal leveled logging to stderr. Secrets must never be passed here.
#include <string_view>

#include <fmt/format.h>

namespace hearth {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
bool parse_log_level(std::string_view name, LogLevel* out);
void log_message(LogLevel level, std::string_view message);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < log_level()) return;
  log_message(level, fmt::format(f, std::forward<Args>(args)...));
}

#define HEARTH_LOG_DEBUG(...) ::hearth::log(::hearth::LogLevel::kDebug, __VA_ARGS__)
#define HEARTH_LOG_INFO(...) ::hearth::log(::hearth::LogLevel::kInfo, __VA_ARGS__)
#define HEARTH_LOG_WARN(...) ::hearth::log(::hearth::LogLevel::kWarn, __VA_ARGS__)
#define HEARTH_LOG_ERROR(...) ::hearth::log(::hearth::LogLevel::kError, __VA_ARGS__)

}  // namespace hearth
