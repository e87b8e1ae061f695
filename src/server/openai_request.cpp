#include "server/openai_request.h"

#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "core/json_guard.h"
#include "core/utf8.h"

namespace hearth::server {

nlohmann::ordered_json ApiError::to_json() const {
  using oj = nlohmann::ordered_json;
  oj e{{"message", message},
       {"type", type},
       {"param", param.empty() ? oj(nullptr) : oj(param)},
       {"code", code.empty() ? oj(nullptr) : oj(code)}};
  return oj{{"error", e}};
}

namespace {

using ojson = nlohmann::ordered_json;

ApiError invalid(std::string param, std::string message, std::string code = "") {
  ApiError e;
  e.param = std::move(param);
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

// Reads typed fields of one JSON object, remembering the first error.
class Fields {
 public:
  explicit Fields(const ojson& obj) : obj_(obj) {}
  std::optional<ApiError> error;

  bool has(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }

  bool number(const char* key, double lo, double hi, double* out, bool lo_open = false) {
    if (!has(key)) return true;
    const ojson& v = obj_[key];
    if (!v.is_number()) return fail(key, fmt::format("'{}' must be a number", key));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi || (lo_open && d == lo)) {
      return fail(key, fmt::format("'{}' must be in {}{}, {}], got {}", key, lo_open ? "(" : "[", lo, hi, d));
    }
    *out = d;
    return true;
  }
  bool integer(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    if (!has(key)) return true;
    const ojson& v = obj_[key];
    if (!v.is_number_integer()) return fail(key, fmt::format("'{}' must be an integer", key));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return fail(key, fmt::format("'{}' must be in [{}, {}]", key, lo, hi));
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) return fail(key, fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, i));
    *out = i;
    return true;
  }
  bool boolean(const char* key, bool* out) {
    if (!has(key)) return true;
    if (!obj_[key].is_boolean()) return fail(key, fmt::format("'{}' must be a boolean", key));
    *out = obj_[key].get<bool>();
    return true;
  }
  bool string(const char* key, size_t max_bytes, std::string* out, bool required = false) {
    if (!has(key)) return required ? fail(key, fmt::format("'{}' is required", key)) : true;
    if (!obj_[key].is_string()) return fail(key, fmt::format("'{}' must be a string", key));
    const std::string& s = obj_[key].get_ref<const std::string&>();
    if (s.size() > max_bytes) return fail(key, fmt::format("'{}' is longer than {} bytes", key, max_bytes));
    *out = s;
    return true;
  }
  bool fail(std::string param, std::string message, std::string code = "") {
    if (!error) error = invalid(std::move(param), std::move(message), std::move(code));
    return false;
  }

 private:
  const ojson& obj_;
};

using FieldSet = std::set<std::string, std::less<>>;

// Fields OpenAI defines that hearth accepts and ignores (they change nothing in a self-hosted model).
const FieldSet& ignored_fields() {
  static const FieldSet k = {"parallel_tool_calls", "metadata",        "store",      "service_tier",
                             "reasoning_effort",    "modalities",      "prediction", "web_search_options",
                             "safety_identifier",   "prompt_cache_key"};
  return k;
}

// The sampling and stopping fields both endpoints read (parse_generation).
const FieldSet& generation_fields() {
  static const FieldSet k = {"model",
                             "stream",
                             "stream_options",
                             "n",
                             "stop",
                             "max_tokens",
                             "temperature",
                             "top_p",
                             "top_k",
                             "min_p",
                             "presence_penalty",
                             "frequency_penalty",
                             "repetition_penalty",
                             "seed",
                             "logprobs",
                             "user",
                             "priority",
                             "logit_bias",
                             "best_of",
                             "ignore_eos"};
  return k;
}

// Refuses a field that is neither in `known`, nor in `shared` (when given), nor ignorable.
std::optional<ApiError> check_fields(const ojson& obj, const FieldSet& known,
                                     const FieldSet* shared = nullptr) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (known.count(it.key()) || (shared != nullptr && shared->count(it.key())) ||
        ignored_fields().count(it.key()))
      continue;
    // OpenAI's own wording, so clients that match on it keep working.
    return invalid(it.key(), fmt::format("Unrecognized request argument supplied: {}", it.key()));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_body(std::string_view body, const RequestLimits& limits, ojson* out) {
  if (body.size() > limits.max_body_bytes) {
    ApiError e = invalid("", fmt::format("the request body is larger than {} bytes", limits.max_body_bytes));
    e.status = 413;
    return e;
  }
  if (!utf8::is_valid(body)) return invalid("", "the request body is not valid UTF-8");
  const Status guard = check_json_limits(
      body, {.max_bytes = limits.max_body_bytes, .max_depth = limits.max_depth}, "request body");
  if (!guard.is_ok()) return invalid("", guard.message());
  *out = ojson::parse(body, nullptr, false);
  if (out->is_discarded()) return invalid("", "the request body is not valid JSON");
  if (!out->is_object()) return invalid("", "the request body must be a JSON object");
  return std::nullopt;
}

bool parse_generation(Fields& f, const ojson& obj, const RequestLimits& limits, bool chat,
                      GenerationFields* g) {
  int64_t i = 0;
  SamplingParams& s = g->sampling;
  double d = s.temperature;  // absent fields keep the defaults
  if (!f.number("temperature", 0, 2, &d)) return false;
  s.temperature = static_cast<float>(d);
  d = 1;
  if (!f.number("top_p", 0, 1, &d, true)) return false;
  s.top_p = static_cast<float>(d);
  i = 0;
  if (!f.integer("top_k", -1, 1 << 20, &i)) return false;
  s.top_k = static_cast<int32_t>(i < 0 ? 0 : i);  // -1 (vLLM) and 0 both mean off
  d = 0;
  if (!f.number("min_p", 0, 1, &d)) return false;
  s.min_p = static_cast<float>(d);
  d = 0;
  if (!f.number("presence_penalty", -2, 2, &d)) return false;
  s.presence_penalty = static_cast<float>(d);
  d = 0;
  if (!f.number("frequency_penalty", -2, 2, &d)) return false;
  s.frequency_penalty = static_cast<float>(d);
  d = 1;
  if (!f.number("repetition_penalty", 0, 2, &d, true)) return false;
  s.repetition_penalty = static_cast<float>(d);
  if (f.has("seed")) {
    if (!f.integer("seed", INT64_MIN, INT64_MAX, &i)) return false;
    s.seed = static_cast<uint64_t>(i);
  }
  g->has_temperature = f.has("temperature");
  g->has_top_p = f.has("top_p");
  g->has_top_k = f.has("top_k");
  if (chat) {
    if (!f.boolean("logprobs", &g->logprobs)) return false;
    i = 0;
    if (!f.integer("top_logprobs", 0, 20, &i)) return false;
    if (i > 0 && !g->logprobs) return f.fail("top_logprobs", "'top_logprobs' requires 'logprobs': true");
    s.top_logprobs = static_cast<int32_t>(i);
  } else {
    i = 0;
    if (!f.integer("logprobs", 0, 20, &i)) return false;  // the completions API's integer form
    g->logprobs = f.has("logprobs");
    s.top_logprobs = static_cast<int32_t>(i);
  }
  // max_completion_tokens is the newer name; both accepted, they must agree when both are given.
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!f.has(key)) continue;
    if (!f.integer(key, 1, limits.max_tokens, &i)) return false;
    if (g->max_tokens && *g->max_tokens != i)
      return f.fail(key, "'max_tokens' and 'max_completion_tokens' differ");
    g->max_tokens = i;
  }
  i = 1;
  if (!f.integer("n", 1, limits.max_n, &i)) return false;
  g->n = static_cast<int>(i);
  if (f.has("stop")) {
    const ojson& st = obj["stop"];
    if (st.is_string()) {
      g->stop.push_back(st.get<std::string>());
    } else if (st.is_array()) {
      if (st.size() > limits.max_stop)
        return f.fail("stop", fmt::format("'stop' has more than {} entries", limits.max_stop));
      for (const auto& e : st) {
        if (!e.is_string()) return f.fail("stop", "'stop' must be a string or an array of strings");
        g->stop.push_back(e.get<std::string>());
      }
    } else {
      return f.fail("stop", "'stop' must be a string or an array of strings");
    }
    for (const auto& s2 : g->stop) {
      if (s2.empty() || s2.size() > limits.max_stop_bytes)
        return f.fail("stop", fmt::format("each stop sequence must be 1 to {} bytes", limits.max_stop_bytes));
    }
  }
  if (!f.boolean("stream", &g->stream)) return false;
  if (f.has("stream_options")) {
    const ojson& so = obj["stream_options"];
    if (!so.is_object()) return f.fail("stream_options", "'stream_options' must be an object");
    Fields sf(so);
    if (!sf.boolean("include_usage", &g->include_usage))
      return f.fail("stream_options.include_usage", sf.error->message);
    if (!g->stream) return f.fail("stream_options", "'stream_options' is only allowed when 'stream' is true");
  }
  if (!f.string("user", limits.max_user_bytes, &g->user)) return false;
  if (!f.boolean("ignore_eos", &g->ignore_eos)) return false;
  i = 0;
  if (!f.integer("priority", -1000000, 1000000, &i)) return false;
  g->priority = static_cast<int32_t>(i);
  if (f.has("best_of")) {
    if (!f.integer("best_of", 1, limits.max_n, &i)) return false;
    if (i != g->n) return f.fail("best_of", "'best_of' other than 'n' is not supported");
  }
  if (f.has("logit_bias")) {
    // {"token id": bias in [-100, 100]} (OpenAI); ids are checked against the model's vocabulary later.
    const ojson& lb = obj["logit_bias"];
    if (!lb.is_object()) return f.fail("logit_bias", "'logit_bias' must be an object of token id: bias");
    if (lb.size() > SamplingParams::kMaxLogitBias)
      return f.fail("logit_bias",
                    fmt::format("'logit_bias' has more than {} entries", SamplingParams::kMaxLogitBias));
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& key = it.key();
      int32_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || key.empty())
        return f.fail("logit_bias",
                      fmt::format("'logit_bias' key '{}' is not a token id", key.substr(0, 32)));
      const ojson& v = it.value();
      const double b = v.is_number() ? v.get<double>() : NAN;
      if (!std::isfinite(b) || b < -100.0 || b > 100.0)
        return f.fail("logit_bias",
                      fmt::format("'logit_bias' of token {} must be a number in [-100, 100]", id));
      s.logit_bias.emplace_back(id, static_cast<float>(b));
    }
  }
  const int64_t cost = static_cast<int64_t>(g->n) * g->max_tokens.value_or(1) * (s.top_logprobs + 1);
  if (cost > limits.max_cost) {
    return f.fail("n",
                  fmt::format("n x max_tokens x (top_logprobs + 1) = {} exceeds {}", cost, limits.max_cost));
  }
  const Status sv = s.validate();
  if (!sv.is_ok()) return f.fail("", sv.message());
  return true;
}

// One chat message, normalised for the chat template: content becomes a string (text parts joined).
bool parse_message(const ojson& m, size_t index, const RequestLimits& limits, Fields& top, ojson* out) {
  const std::string where = fmt::format("messages[{}]", index);
  if (!m.is_object()) return top.fail(where, fmt::format("'{}' must be an object", where));
  static const FieldSet kKnown = {"role",         "content",           "name",   "tool_calls",
                                  "tool_call_id", "reasoning_content", "refusal"};
  if (auto e = check_fields(m, kKnown)) return top.fail(where + "." + e->param, e->message);
  if (!m.contains("role") || !m["role"].is_string())
    return top.fail(where + ".role", fmt::format("'{}.role' is required", where));
  const std::string role = m["role"].get<std::string>();
  static const FieldSet kRoles = {"system", "developer", "user", "assistant", "tool"};
  if (!kRoles.count(role))
    return top.fail(where + ".role",
                    fmt::format("'{}' is not a role (system, developer, user, assistant, tool)", role));
  ojson msg = ojson::object();
  msg["role"] = role == "developer" ? "system" : role;
  std::string content;
  const bool has_content = m.contains("content") && !m["content"].is_null();
  if (has_content) {
    const ojson& c = m["content"];
    if (c.is_string()) {
      content = c.get<std::string>();
    } else if (c.is_array()) {
      for (size_t k = 0; k < c.size(); ++k) {
        const ojson& part = c[k];
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          return top.fail(fmt::format("{}.content[{}]", where, k), "only text content parts are supported");
        }
        content += part["text"].get<std::string>();
      }
    } else {
      return top.fail(where + ".content", "'content' must be a string or an array of text parts");
    }
  } else if (role != "assistant") {
    return top.fail(where + ".content", fmt::format("'{}.content' is required", where));
  }
  if (content.size() > limits.max_content_bytes)
    return top.fail(where + ".content",
                    fmt::format("content longer than {} bytes", limits.max_content_bytes));
  // An assistant turn without content (tool calls only) keeps null: DeepSeek's templates render tool
  // calls only when content is none. Templates that need a string (Qwen3) get "" at render time.
  if (has_content) {
    msg["content"] = content;
  } else {
    msg["content"] = nullptr;
  }
  if (m.contains("name") && !m["name"].is_null()) {
    if (!m["name"].is_string()) return top.fail(where + ".name", "'name' must be a string");
    msg["name"] = m["name"];
  }
  if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null()) {
    const ojson& tc = m["tool_calls"];
    if (!tc.is_array()) return top.fail(where + ".tool_calls", "'tool_calls' must be an array");
    ojson calls = ojson::array();
    for (size_t k = 0; k < tc.size(); ++k) {
      const ojson& c = tc[k];
      const std::string p = fmt::format("{}.tool_calls[{}]", where, k);
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
          !c["function"].contains("name") || !c["function"]["name"].is_string())
        return top.fail(p, "a tool call needs function.name");
      ojson fn = ojson::object();
      fn["name"] = c["function"]["name"];
      // DeepSeek's templates print arguments as a JSON string (OpenAI's form); objects are serialised.
      const ojson args = c["function"].contains("arguments") ? c["function"]["arguments"] : ojson("{}");
      fn["arguments"] = args.is_string() ? args : ojson(args.dump());
      calls.push_back(
          ojson{{"id", c.value("id", fmt::format("call_{}", k))}, {"type", "function"}, {"function", fn}});
    }
    msg["tool_calls"] = calls;
  }
  if (role == "tool") {
    if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string())
      return top.fail(where + ".tool_call_id", "a tool message needs 'tool_call_id'");
    msg["tool_call_id"] = m["tool_call_id"];
  }
  *out = std::move(msg);
  return true;
}

}  // namespace

ChatParse parse_chat_completion(std::string_view body, const RequestLimits& limits) {
  ojson obj;
  if (auto e = parse_body(body, limits, &obj)) return *e;
  static const FieldSet kChat = {"messages",    "max_completion_tokens", "top_logprobs",        "tools",
                                 "tool_choice", "response_format",       "chat_template_kwargs"};
  if (auto e = check_fields(obj, kChat, &generation_fields())) return *e;
  ChatCompletionRequest r;
  Fields f(obj);
  if (!f.string("model", 256, &r.model, true)) return *f.error;
  if (!obj.contains("messages") || !obj["messages"].is_array() || obj["messages"].empty())
    return invalid("messages", "'messages' must be a non-empty array");
  const ojson& msgs = obj["messages"];
  if (msgs.size() > limits.max_messages)
    return invalid("messages", fmt::format("more than {} messages", limits.max_messages));
  for (size_t i = 0; i < msgs.size(); ++i) {
    ojson m;
    if (!parse_message(msgs[i], i, limits, f, &m)) return *f.error;
    r.messages.push_back(std::move(m));
  }
  if (!parse_generation(f, obj, limits, true, &r.gen)) return *f.error;
  if (f.has("tools")) {
    const ojson& tools = obj["tools"];
    if (!tools.is_array()) return invalid("tools", "'tools' must be an array");
    if (tools.size() > limits.max_tools)
      return invalid("tools", fmt::format("more than {} tools", limits.max_tools));
    for (size_t k = 0; k < tools.size(); ++k) {
      const ojson& t = tools[k];
      if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
          !t["function"].is_object() || !t["function"].contains("name") || !t["function"]["name"].is_string())
        return invalid(fmt::format("tools[{}]", k),
                       "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (!tools.empty()) r.tools = tools;
  }
  if (f.has("tool_choice")) {
    const ojson& tc = obj["tool_choice"];
    if (tc.is_string()) {
      r.tool_choice = tc.get<std::string>();
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required")
        return invalid("tool_choice", "'tool_choice' must be none, auto, required or a function");
    } else if (tc.is_object() && tc.value("type", "") == "function" && tc.contains("function") &&
               tc["function"].is_object() && tc["function"].contains("name") &&
               tc["function"]["name"].is_string()) {
      r.tool_choice = tc["function"]["name"].get<std::string>();
    } else {
      return invalid("tool_choice", "'tool_choice' must be none, auto, required or a function");
    }
    if (r.tool_choice != "none" && r.tool_choice != "auto" && !r.tools)
      return invalid("tool_choice", "'tool_choice' needs 'tools'");
  }
  if (f.has("chat_template_kwargs")) {
    // vLLM's extension: extra template variables (enable_thinking, ...). Only plain names; they cannot
    // replace the variables the server sets.
    const ojson& kw = obj["chat_template_kwargs"];
    if (!kw.is_object()) return invalid("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    if (kw.size() > 64)
      return invalid("chat_template_kwargs", "'chat_template_kwargs' has more than 64 entries");
    for (auto it = kw.begin(); it != kw.end(); ++it) {
      const std::string& k = it.key();
      if (k == "messages" || k == "tools" || k == "add_generation_prompt" || k == "bos_token" ||
          k == "eos_token" || k.empty() || k.size() > 64)
        return invalid("chat_template_kwargs", fmt::format("'chat_template_kwargs' may not set '{}'", k));
    }
    r.template_kwargs = kw;
  }
  if (f.has("response_format")) {
    const ojson& rf = obj["response_format"];
    const std::string type = rf.is_object() ? rf.value("type", "") : "";
    if (type == "json_object") {
      r.json_object = true;
    } else if (type != "text") {
      return invalid("response_format", "'response_format.type' must be text or json_object");
    }
  }
  return r;
}

CompletionParse parse_completion(std::string_view body, const RequestLimits& limits) {
  ojson obj;
  if (auto e = parse_body(body, limits, &obj)) return *e;
  static const FieldSet kCompletion = {"prompt", "echo", "suffix"};
  if (auto e = check_fields(obj, kCompletion, &generation_fields())) return *e;
  CompletionRequest r;
  Fields f(obj);
  if (!f.string("model", 256, &r.model, true)) return *f.error;
  if (f.has("suffix")) return invalid("suffix", "'suffix' is not supported");
  if (!obj.contains("prompt") || obj["prompt"].is_null()) return invalid("prompt", "'prompt' is required");
  const ojson& p = obj["prompt"];
  auto ids_of = [&](const ojson& arr, std::vector<int32_t>* ids) -> bool {
    for (const auto& v : arr) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) return false;
      ids->push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return !ids->empty();
  };
  if (p.is_string()) {
    r.prompts.emplace_back(p.get<std::string>());
  } else if (p.is_array() && !p.empty()) {
    if (p[0].is_number_integer()) {
      std::vector<int32_t> ids;
      if (!ids_of(p, &ids)) return invalid("prompt", "token ids must be integers in [0, 2^31)");
      r.prompts.emplace_back(std::move(ids));
    } else {
      if (p.size() > limits.max_prompts)
        return invalid("prompt", fmt::format("more than {} prompts", limits.max_prompts));
      for (size_t k = 0; k < p.size(); ++k) {
        if (p[k].is_string()) {
          r.prompts.emplace_back(p[k].get<std::string>());
        } else if (p[k].is_array()) {
          std::vector<int32_t> ids;
          if (!ids_of(p[k], &ids))
            return invalid(fmt::format("prompt[{}]", k), "token ids must be integers in [0, 2^31)");
          r.prompts.emplace_back(std::move(ids));
        } else {
          return invalid(fmt::format("prompt[{}]", k),
                         "each prompt must be a string or an array of token ids");
        }
      }
    }
  } else {
    return invalid("prompt", "'prompt' must be a string, token ids, or a non-empty array of them");
  }
  for (const auto& pr : r.prompts)
    if (const auto* s = std::get_if<std::string>(&pr); s != nullptr && s->size() > limits.max_content_bytes)
      return invalid("prompt", fmt::format("a prompt is longer than {} bytes", limits.max_content_bytes));
  if (!f.boolean("echo", &r.echo)) return *f.error;
  if (!parse_generation(f, obj, limits, false, &r.gen)) return *f.error;
  const int64_t cost = static_cast<int64_t>(r.prompts.size()) * r.gen.n * r.gen.max_tokens.value_or(16);
  if (cost > limits.max_cost) return invalid("prompt", "prompts x n x max_tokens is too large");
  if (!r.gen.max_tokens) r.gen.max_tokens = 16;  // the completions API's default
  return r;
}

}  // namespace hearth::server
