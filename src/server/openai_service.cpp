#include "server/openai_service.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <unordered_set>

#include "core/json_guard.h"
#include "core/json_string.h"
#include "core/log.h"
#include "core/utf8.h"
#include "model/model_files.h"
#include "model/tokenizer/detokenizer.h"
#include "server/serve_metrics.h"
#include "server/stop_matcher.h"

namespace hearth::server {

namespace {

using json = nlohmann::ordered_json;  // responses keep OpenAI's key order (id, object, created, ...)
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, kReplace);
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

ApiError api_error(int status, std::string type, std::string message, std::string param = "",
                   std::string code = "") {
  ApiError e;
  e.status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

// 503 while draining after SIGTERM.
ApiError shutting_down() {
  return api_error(503, "server_error", "The server is shutting down; retry on another replica.", "",
                   "service_unavailable");
}

// A logprob JSON can carry: -inf (a token the sampler could never pick) becomes OpenAI's floor.
double finite_logprob(float lp) {
  return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0;
}

json token_bytes_json(std::string_view bytes) {
  json b = json::array();
  for (unsigned char c : bytes) b.push_back(static_cast<int>(c));
  return b;
}

// Characters (code points) of valid UTF-8 text: the unit of the completions API's text_offset.
size_t utf8_chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; }));
}

// Constant-time comparison of the presented key with the configured one: both are hashed first, so
// neither the length nor the content leaks through timing.
bool key_matches(std::string_view presented, const std::array<unsigned char, 32>& want) {
  std::array<unsigned char, 32> got{};
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), got.data());
  return CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

std::string random_hex(size_t n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n, '0');
  for (size_t i = 0; i < n; ++i) s[i] = kHex[rng() & 15];
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// prepare_served_model

Result<ServedModel> prepare_served_model(const std::string& path, std::string name, Engine& engine,
                                         int64_t max_model_len) {
  ServedModel m;
  m.path = path;
  m.name = std::move(name);
  if (m.name.empty()) {
    std::filesystem::path p(path);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/tiny/" -> "tiny"
    m.name = p.stem().string();
  }
  m.engine = &engine;
  HEARTH_ASSIGN_OR_RETURN(m.tokenizer, load_tokenizer_for(path));
  HEARTH_ASSIGN_OR_RETURN(ChatTemplateConfig tc, load_chat_template_for(path, *m.tokenizer));
  if (auto t = tc.select(false); t.is_ok()) {
    auto compiled = ChatTemplate::compile(*t);
    if (!compiled.is_ok()) return compiled.status().with_context(tc.origin);
    m.chat_template = std::move(*compiled);
  }
  for (const auto& [tname, source] : tc.named_templates) {
    if (tname != "tool_use") continue;
    auto compiled = ChatTemplate::compile(source);
    if (!compiled.is_ok()) return compiled.status().with_context(tc.origin + " (tool_use)");
    m.tool_template = std::move(*compiled);
  }
  m.bos_token = tc.bos_token;
  m.eos_token = tc.eos_token;
  HEARTH_ASSIGN_OR_RETURN(m.defaults, load_generation_config(path));
  const ModelRunner& runner = engine.runner();
  m.vocab_size = runner.spec().vocab_size;
  std::unordered_set<int32_t> stops;
  for (int64_t e : runner.spec().eos_token_ids) stops.insert(static_cast<int32_t>(e));
  for (int32_t e : m.defaults.eos) stops.insert(e);
  if (m.tokenizer->eos_id()) stops.insert(*m.tokenizer->eos_id());
  m.stop_ids.assign(stops.begin(), stops.end());
  std::sort(m.stop_ids.begin(), m.stop_ids.end());
  const int64_t bs = runner.kv_block_size();
  const int64_t kv_tokens = runner.kv_num_blocks() * bs;
  m.max_model_len = std::min(runner.max_context(), kv_tokens);
  if (max_model_len > 0) {
    if (max_model_len > m.max_model_len) {
      return make_error(
          ErrorCode::kInvalidArgument,
          "--max-model-len {} exceeds what the model and KV cache allow ({}: context {}, KV cache {} "
          "tokens); raise --kv-tokens or lower --max-model-len",
          max_model_len, m.max_model_len, runner.max_context(), kv_tokens);
    }
    m.max_model_len = max_model_len;
  }
  if (m.tokenizer->token_to_id("<｜tool▁calls▁begin｜>")) {
    m.tool_format = ToolCallFormat::kDeepSeek;
  } else if (m.tokenizer->token_to_id("<tool_call>")) {
    m.tool_format = ToolCallFormat::kQwen;
  }
  m.reasoning =
      m.tokenizer->token_to_id("<think>").has_value() && m.tokenizer->token_to_id("</think>").has_value();
  m.json_tokens = JsonTokenTable::build(*m.tokenizer, m.vocab_size, m.stop_ids);
  m.created = static_cast<int64_t>(std::time(nullptr));
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Generation: one request's choices, fed by engine events, answered on the connection's strand.

namespace {

enum class Api { kChat, kCompletion };

struct Choice {
  uint64_t engine_id = 0;
  bool submitted = false;
  bool done = false;       // final event seen
  bool stopped = false;    // a stop string matched: the engine request was cancelled
  bool role_sent = false;  // stream: the first chunk (role) went out
  tok::IncrementalDetokenizer detok;
  StopMatcher stop;
  OutputParser parser;
  std::string text;          // completions: the text so far (echo included)
  std::string echo_pending;  // completions stream: the echoed prompt, sent with the first chunk
  int64_t tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;
  std::string finish_reason;
  json logprobs_content = json::array();  // chat: entries; completions: built in the parallel arrays below
  json lp_tokens = json::array(), lp_values = json::array(), lp_top = json::array(),
       lp_offsets = json::array();
  size_t text_offset = 0;
  Clock::time_point last_token{};
  bool got_token = false;

  Choice(std::shared_ptr<const tok::Tokenizer> t, std::vector<std::string> stops, OutputParserConfig pc)
      : detok(std::move(t)), stop(std::move(stops)), parser(pc) {}
};

// What a drain produced for one choice (stream mode).
struct ChoiceDelta {
  std::string content, reasoning;
  std::vector<std::pair<int, ToolCall>> tool_calls;
  json logprobs;  // chat: array of entries; completions: object of arrays; null when none
  bool finished = false;
};

}  // namespace

struct OpenAiService::Impl {
  OpenAiService& svc;
  std::array<unsigned char, 32> key_hash{};
  std::string fingerprint;

  explicit Impl(OpenAiService& s) : svc(s) {}

  const ServedModel& m() const { return svc.model_; }

  // ---- responses -------------------------------------------------------------------------------
  void send_error(Exchange& ex, const ApiError& e, HttpHeaders headers = {}) {
    if (svc.metrics_) svc.metrics_->http_response(e.status);
    ex.respond(e.status, "application/json", dump(e.to_json()), std::move(headers));
  }
  // An error that may clear with time: 429 and 503 say when to retry.
  void send_refusal(Exchange& ex, const ApiError& e) {
    HttpHeaders h;
    if (e.status == 429) h.emplace_back("Retry-After", std::to_string(svc.config_.retry_after_s));
    if (e.status == 503) h.emplace_back("Retry-After", "5");
    send_error(ex, e, std::move(h));
  }
  void send_json(Exchange& ex, int status, const json& body) {
    if (svc.metrics_) svc.metrics_->http_response(status);
    ex.respond(status, "application/json", dump(body));
  }

  // ---- routing ---------------------------------------------------------------------------------
  void handle(const std::shared_ptr<Exchange>& ex) {
    namespace http = boost::beast::http;
    const std::string_view path = ex->path();
    const auto method = ex->request().method();
    const bool get = method == http::verb::get || method == http::verb::head;
    const bool post = method == http::verb::post;
    auto wrong_method = [&](const char* allow) {
      ApiError e = api_error(405, "invalid_request_error",
                             fmt::format("Method {} is not allowed on {}",
                                         std::string(ex->request().method_string()), std::string(path)));
      send_error(*ex, e, {{"Allow", allow}});
    };
    if (path == "/health") {
      if (!get) return wrong_method("GET");
      if (svc.metrics_) svc.metrics_->http_response(200);
      return ex->respond(200, "application/json", "{}");
    }
    if (path == "/ready") {
      if (!get) return wrong_method("GET");
      const bool ready = !svc.draining();
      return send_json(*ex, ready ? 200 : 503, json{{"status", ready ? "ready" : "draining"}});
    }
    if (path == "/metrics") {
      if (!get) return wrong_method("GET");
      if (svc.metrics_) svc.metrics_->http_response(200);
      return ex->respond(200, "text/plain; version=0.0.4; charset=utf-8",
                         svc.metrics_ ? svc.metrics_->render() : std::string());
    }
    const bool v1 = path.substr(0, 4) == "/v1/";
    const bool known = path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/models" ||
                       path.substr(0, 11) == "/v1/models/" || path == "/tokenize" || path == "/detokenize";
    if (!known) {
      return send_error(
          *ex, api_error(404, "invalid_request_error",
                         fmt::format("Unknown endpoint: {} {}", std::string(ex->request().method_string()),
                                     std::string(path)),
                         "", v1 ? "unknown_url" : ""));
    }
    if (!svc.config_.api_key.empty()) {
      const std::string_view auth = ex->header("Authorization");
      const std::string_view bearer = "Bearer ";
      if (auth.size() <= bearer.size() || auth.substr(0, bearer.size()) != bearer ||
          !key_matches(auth.substr(bearer.size()), key_hash)) {
        return send_error(
            *ex,
            api_error(401, "invalid_request_error",
                      auth.empty() ? "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
                                   : "Incorrect API key provided.",
                      "", "invalid_api_key"),
            {{"WWW-Authenticate", "Bearer"}});
      }
    }
    if (path == "/v1/models" || path.substr(0, 11) == "/v1/models/") {
      if (!get) return wrong_method("GET");
      return models(*ex, path.size() > 11 ? path.substr(11) : std::string_view());
    }
    if (!post) return wrong_method("POST");
    if (path == "/v1/chat/completions") return chat(ex);
    if (path == "/v1/completions") return completion(ex);
    if (path == "/tokenize") return tokenize(*ex);
    return detokenize(*ex);
  }

  json model_card() const {
    return json{{"id", m().name},       {"object", "model"}, {"created", m().created},
                {"owned_by", "hearth"}, {"root", m().path},  {"max_model_len", m().max_model_len},
                {"parent", nullptr}};
  }

  void models(Exchange& ex, std::string_view id) {
    if (!id.empty()) {
      if (id != m().name) return send_error(ex, model_not_found(std::string(id)));
      return send_json(ex, 200, model_card());
    }
    send_json(ex, 200, json{{"object", "list"}, {"data", json::array({model_card()})}});
  }

  ApiError model_not_found(const std::string& name) const {
    return api_error(404, "invalid_request_error",
                     fmt::format("The model `{}` does not exist. This server serves `{}` (GET /v1/models).",
                                 name, m().name),
                     "model", "model_not_found");
  }

  // ---- /tokenize and /detokenize (vLLM's shapes) ------------------------------------------------
  std::optional<ApiError> parse_small_body(std::string_view body, ojson* out) {
    const auto& lim = svc.config_.limits;
    if (body.size() > lim.max_body_bytes)
      return api_error(413, "invalid_request_error", "the request body is too large");
    if (!utf8::is_valid(body))
      return api_error(400, "invalid_request_error", "the request body is not valid UTF-8");
    const Status g = check_json_limits(body, {.max_bytes = lim.max_body_bytes, .max_depth = lim.max_depth},
                                       "request body");
    if (!g.is_ok()) return api_error(400, "invalid_request_error", g.message());
    *out = ojson::parse(body, nullptr, false);
    if (out->is_discarded() || !out->is_object())
      return api_error(400, "invalid_request_error", "the request body must be a JSON object");
    if (out->contains("model") && !(*out)["model"].is_null()) {
      if (!(*out)["model"].is_string())
        return api_error(400, "invalid_request_error", "'model' must be a string", "model");
      if ((*out)["model"].get<std::string>() != m().name)
        return model_not_found((*out)["model"].get<std::string>());
    }
    return std::nullopt;
  }

  void tokenize(Exchange& ex) {
    ojson body;
    if (auto e = parse_small_body(ex.request().body(), &body)) return send_error(ex, *e);
    for (auto it = body.begin(); it != body.end(); ++it) {
      static const std::set<std::string, std::less<>> kKnown = {"model",
                                                                "prompt",
                                                                "messages",
                                                                "add_special_tokens",
                                                                "add_generation_prompt",
                                                                "return_token_strs",
                                                                "chat_template_kwargs",
                                                                "tools"};
      if (!kKnown.count(it.key()))
        return send_error(
            ex, api_error(400, "invalid_request_error",
                          fmt::format("Unrecognized request argument supplied: {}", it.key()), it.key()));
    }
    auto boolean = [&](const char* k, bool dflt, bool* out) -> bool {
      if (!body.contains(k) || body[k].is_null()) {
        *out = dflt;
        return true;
      }
      if (!body[k].is_boolean()) return false;
      *out = body[k].get<bool>();
      return true;
    };
    std::string text;
    bool add_special = true;
    bool strs = false;
    if (!boolean("return_token_strs", false, &strs))
      return send_error(ex, api_error(400, "invalid_request_error", "'return_token_strs' must be a boolean"));
    if (body.contains("messages")) {
      // Render like chat completions: the chat body's own parser checks the messages.
      ojson chat = ojson::object();
      chat["model"] = m().name;
      chat["messages"] = body["messages"];
      if (body.contains("tools")) chat["tools"] = body["tools"];
      if (body.contains("chat_template_kwargs")) chat["chat_template_kwargs"] = body["chat_template_kwargs"];
      auto parsed = parse_chat_completion(dump(chat), svc.config_.limits);
      if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(ex, *e);
      bool agp = true;
      if (!boolean("add_generation_prompt", true, &agp))
        return send_error(
            ex, api_error(400, "invalid_request_error", "'add_generation_prompt' must be a boolean"));
      auto rendered = render(std::get<ChatCompletionRequest>(parsed), agp);
      if (auto* e = std::get_if<ApiError>(&rendered)) return send_error(ex, *e);
      text = std::move(std::get<std::string>(rendered));
      if (!boolean("add_special_tokens", false, &add_special))
        return send_error(ex,
                          api_error(400, "invalid_request_error", "'add_special_tokens' must be a boolean"));
    } else {
      if (!body.contains("prompt") || !body["prompt"].is_string())
        return send_error(
            ex, api_error(400, "invalid_request_error", "give 'prompt' (a string) or 'messages'", "prompt"));
      text = body["prompt"].get<std::string>();
      if (!boolean("add_special_tokens", true, &add_special))
        return send_error(ex,
                          api_error(400, "invalid_request_error", "'add_special_tokens' must be a boolean"));
    }
    auto ids = m().tokenizer->encode(text, {.add_special_tokens = add_special});
    if (!ids.is_ok())
      return send_error(ex, api_error(400, "invalid_request_error", ids.status().message(), "prompt"));
    json out{{"count", ids->size()}, {"max_model_len", m().max_model_len}, {"tokens", *ids}};
    if (strs) {
      json s = json::array();
      for (int32_t id : *ids) s.push_back(m().tokenizer->id_to_token(id));
      out["token_strs"] = std::move(s);
    }
    send_json(ex, 200, out);
  }

  void detokenize(Exchange& ex) {
    ojson body;
    if (auto e = parse_small_body(ex.request().body(), &body)) return send_error(ex, *e);
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (it.key() != "model" && it.key() != "tokens")
        return send_error(
            ex, api_error(400, "invalid_request_error",
                          fmt::format("Unrecognized request argument supplied: {}", it.key()), it.key()));
    }
    if (!body.contains("tokens") || !body["tokens"].is_array())
      return send_error(
          ex, api_error(400, "invalid_request_error", "'tokens' must be an array of token ids", "tokens"));
    std::vector<int32_t> ids;
    const auto& toks = body["tokens"];
    for (size_t i = 0; i < toks.size(); ++i) {
      const auto& t = toks[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= m().vocab_size ||
          !m().tokenizer->is_valid_id(static_cast<int32_t>(t.get<int64_t>()))) {
        return send_error(ex, api_error(400, "invalid_request_error",
                                        fmt::format("tokens[{}] is not a token id of this model (0 to {})", i,
                                                    m().vocab_size - 1),
                                        fmt::format("tokens[{}]", i)));
      }
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    auto text = m().tokenizer->decode(ids);
    if (!text.is_ok())
      return send_error(ex, api_error(400, "invalid_request_error", text.status().message(), "tokens"));
    send_json(ex, 200, json{{"prompt", *text}});
  }

  // ---- chat template ---------------------------------------------------------------------------
  std::variant<std::string, ApiError> render(const ChatCompletionRequest& r, bool add_generation_prompt) {
    const bool tools = r.tools.has_value();
    const ChatTemplate* t = (tools && m().tool_template)
                                ? &*m().tool_template
                                : (m().chat_template ? &*m().chat_template : nullptr);
    if (t == nullptr) {
      return api_error(
          400, "invalid_request_error",
          fmt::format("the model `{}` has no chat template (tokenizer_config.json has no chat_template); "
                      "use /v1/completions",
                      m().name));
    }
    ChatRenderInput in;
    in.messages = r.messages;
    in.tools = r.tools;
    in.add_generation_prompt = add_generation_prompt;
    in.bos_token = m().bos_token;
    in.eos_token = m().eos_token;
    in.extra = r.template_kwargs;
    auto out = t->render(in);
    if (!out.is_ok()) {
      // Some templates (Qwen3's) cannot render an assistant turn whose content is null; DeepSeek's need
      // the null. Try the empty string before giving up.
      bool changed = false;
      for (auto& msg : in.messages) {
        if (msg.contains("content") && msg["content"].is_null()) {
          msg["content"] = "";
          changed = true;
        }
      }
      if (changed) {
        auto retry = t->render(in);
        if (retry.is_ok()) return std::move(*retry);
      }
      return api_error(
          400, "invalid_request_error",
          fmt::format("the chat template could not render these messages: {}", out.status().message()),
          "messages");
    }
    return std::move(*out);
  }

  // ---- generation ------------------------------------------------------------------------------
  SequenceRequest base_request(const GenerationFields& g, const Exchange& ex) const {
    SequenceRequest sr;
    sr.sampling = g.sampling;
    const GenerationDefaults& d = m().defaults;
    if (!g.has_temperature) sr.sampling.temperature = d.greedy ? 0.0f : d.temperature.value_or(1.0f);
    if (!g.has_top_p) sr.sampling.top_p = d.top_p.value_or(1.0f);
    if (!g.has_top_k) sr.sampling.top_k = d.top_k.value_or(0);
    if (!g.ignore_eos) sr.stop_ids = m().stop_ids;
    const std::string_view tenant = ex.header(svc.config_.tenant_header);
    sr.tenant = !tenant.empty() ? std::string(tenant.substr(0, 256)) : g.user;
    sr.priority = g.priority;
    return sr;
  }

  // prompt_len + max_tokens within the context (and logit_bias ids within the vocabulary); returns
  // max_tokens.
  std::variant<int64_t, ApiError> fit_context(int64_t prompt_len, const GenerationFields& g,
                                              const char* where) const {
    for (const auto& [id, bias] : g.sampling.logit_bias) {
      if (id >= m().vocab_size)
        return api_error(
            400, "invalid_request_error",
            fmt::format("logit_bias: {} is not a token id of this model (0 to {})", id, m().vocab_size - 1),
            "logit_bias");
    }
    const int64_t ctx = m().max_model_len;
    if (prompt_len >= ctx || (g.max_tokens && prompt_len + *g.max_tokens > ctx)) {
      return api_error(
          400, "invalid_request_error",
          g.max_tokens
              ? fmt::format("This model's maximum context length is {} tokens. However, you requested "
                            "{} tokens ({} in the {}, {} in the completion). Please reduce the "
                            "length of the {} or completion.",
                            ctx, prompt_len + *g.max_tokens, prompt_len, where, *g.max_tokens, where)
              : fmt::format("This model's maximum context length is {} tokens. However, your {} "
                            "resulted in {} tokens. Please reduce the length of the {}.",
                            ctx, where, prompt_len, where),
          where, "context_length_exceeded");
    }
    return g.max_tokens.value_or(ctx - prompt_len);
  }

  void chat(const std::shared_ptr<Exchange>& ex);
  void completion(const std::shared_ptr<Exchange>& ex);
};

// ---------------------------------------------------------------------------------------------------
// A running request.

namespace {

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  Generation(OpenAiService::Impl& impl, const ServedModel& model, ServeMetrics* metrics,
             std::shared_ptr<Exchange> ex, Api api, const GenerationFields& gen, std::string model_name)
      : impl_(impl),
        model_(model),
        metrics_(metrics),
        ex_(std::move(ex)),
        api_(api),
        gen_(gen),
        model_name_(std::move(model_name)),
        started_(Clock::now()) {
    id_ = (api == Api::kChat ? "chatcmpl-" : "cmpl-") + random_hex(24);
    created_ = static_cast<int64_t>(std::time(nullptr));
    if (!gen.ignore_eos) stop_set_.insert(model_.stop_ids.begin(), model_.stop_ids.end());
  }

  void add_choice(OutputParserConfig pc, std::string echo_text = {}) {
    auto c = std::make_unique<Choice>(model_.tokenizer, gen_.stop, pc);
    if (!echo_text.empty()) {
      c->text = echo_text;
      c->text_offset = utf8_chars(c->text);
      c->echo_pending = std::move(echo_text);
    }
    choices_.push_back(std::move(c));
  }
  size_t size() const { return choices_.size(); }

  // Submits every choice. On a refusal, cancels what was submitted and returns the error.
  std::optional<ApiError> submit(std::vector<SequenceRequest> requests) {
    auto self = shared_from_this();
    // Weak: the exchange must not keep its generation alive (the generation holds the exchange).
    ex_->on_close([weak = weak_from_this()] {
      if (auto g = weak.lock()) g->client_gone();
    });
    for (size_t i = 0; i < requests.size(); ++i) {
      auto id = model_.engine->submit(std::move(requests[i]),
                                      [self, i](const EngineEvent& e) { self->enqueue(i, e); });
      if (!id.is_ok()) {
        for (size_t k = 0; k < i; ++k) model_.engine->cancel(choices_[k]->engine_id);
        answered_ =
            true;  // the caller answers with the error; late events from the cancelled ones are dropped
        return refusal(id.status());
      }
      choices_[i]->engine_id = *id;
      choices_[i]->submitted = true;
    }
    if (gen_.stream) {
      if (metrics_) metrics_->http_response(200);
      ex_->start_stream(200, "text/event-stream; charset=utf-8",
                        {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}});
    }
    return std::nullopt;
  }

 private:
  ApiError refusal(const Status& st) {
    switch (st.code()) {
      case ErrorCode::kResourceExhausted:
        if (impl_.svc.draining()) {
          if (metrics_) metrics_->request_rejected("draining");
          return shutting_down();
        }
        if (metrics_) metrics_->request_rejected("queue_full");
        return api_error(429, "rate_limit_error",
                         fmt::format("The server is at capacity ({}). Retry after a moment.", st.message()),
                         "", "rate_limit_exceeded");
      case ErrorCode::kOutOfRange:
        return api_error(400, "invalid_request_error", st.message(), "messages", "context_length_exceeded");
      default: return api_error(400, "invalid_request_error", st.message());
    }
  }

  // Engine thread: queue the event, wake the strand once.
  void enqueue(size_t choice, const EngineEvent& e) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.emplace_back(choice, e);
      if (!scheduled_) {
        scheduled_ = true;
        wake = true;
      }
    }
    if (wake) ex_->post([self = shared_from_this()] { self->drain(); });
  }

  void client_gone() {
    gone_ = true;
    for (auto& c : choices_) {
      if (c->submitted && !c->done) model_.engine->cancel(c->engine_id);
    }
  }

  // Strand: process what the engine sent since the last drain.
  void drain() {
    std::vector<std::pair<size_t, EngineEvent>> events;
    {
      std::lock_guard<std::mutex> lock(mu_);
      events.swap(events_);
      scheduled_ = false;
    }
    if (answered_) return;
    std::vector<ChoiceDelta> deltas(choices_.size());
    const Clock::time_point now = Clock::now();
    for (auto& [i, e] : events) {
      Choice& c = *choices_[i];
      if (c.done) continue;
      if (e.token) on_token(i, c, *e.token, now, deltas[i]);
      if (e.finished) on_final(c, e, deltas[i]);
    }
    if (gen_.stream && !gone_) stream_out(deltas);
    if (std::all_of(choices_.begin(), choices_.end(), [](const auto& c) { return c->done; })) finish();
  }

  void on_token(size_t i, Choice& c, const SampledToken& t, Clock::time_point now, ChoiceDelta& d) {
    if (c.stopped) return;
    if (!c.got_token) {
      c.got_token = true;
      if (i == 0 && metrics_) metrics_->observe_ttft(seconds_between(started_, now));
    } else if (metrics_) {
      metrics_->observe_itl(seconds_between(c.last_token, now));
    }
    c.last_token = now;
    ++c.tokens;
    if (stop_set_.count(t.id)) {
      // The end-of-sequence token: no text, but it counts as a completion token, so (as in vLLM) it has its
      // logprob entry and the logprobs stay one per counted token.
      if (gen_.logprobs) add_logprob(c, t, d);
      return;
    }
    std::string piece;
    if (!c.detok.push(t.id, &piece).is_ok()) piece.clear();
    if (gen_.logprobs) add_logprob(c, t, d);
    StopResult sr = c.stop.push(piece);
    emit_text(c, sr.text, d);
    if (api_ == Api::kChat && c.parser.in_reasoning()) ++c.reasoning_tokens;
    if (sr.stopped) {
      c.stopped = true;
      c.finish_reason = "stop";
      model_.engine->cancel(c.engine_id);
    }
  }

  void emit_text(Choice& c, std::string_view text, ChoiceDelta& d) {
    if (text.empty()) return;
    if (api_ == Api::kCompletion) {
      c.text += text;
      d.content += text;
      return;
    }
    ParsedDelta p = c.parser.push(text);
    merge(p, d);
  }

  static void merge(ParsedDelta& p, ChoiceDelta& d) {
    d.content += p.content;
    d.reasoning += p.reasoning;
    for (auto& tc : p.tool_calls) d.tool_calls.push_back(std::move(tc));
  }

  void add_logprob(Choice& c, const SampledToken& t, ChoiceDelta& d) {
    const tok::Tokenizer& tk = *model_.tokenizer;
    const std::string_view bytes = tk.token_bytes(t.id);
    const std::string token = tok::utf8_lossy(bytes);
    if (api_ == Api::kChat) {
      json top = json::array();
      for (const TokenLogprob& a : t.top) {
        const std::string_view ab = tk.token_bytes(a.id);
        top.push_back(json{{"token", tok::utf8_lossy(ab)},
                           {"logprob", finite_logprob(a.logprob)},
                           {"bytes", token_bytes_json(ab)}});
      }
      json entry{{"token", token},
                 {"logprob", finite_logprob(t.logprob)},
                 {"bytes", token_bytes_json(bytes)},
                 {"top_logprobs", std::move(top)}};
      if (d.logprobs.is_null()) d.logprobs = json::array();
      d.logprobs.push_back(entry);
      c.logprobs_content.push_back(std::move(entry));
      return;
    }
    json top = json::object();
    for (const TokenLogprob& a : t.top)
      top[tok::utf8_lossy(tk.token_bytes(a.id))] = finite_logprob(a.logprob);
    if (d.logprobs.is_null()) {
      d.logprobs = json{{"tokens", json::array()},
                        {"token_logprobs", json::array()},
                        {"top_logprobs", json::array()},
                        {"text_offset", json::array()}};
    }
    d.logprobs["tokens"].push_back(token);
    d.logprobs["token_logprobs"].push_back(finite_logprob(t.logprob));
    d.logprobs["top_logprobs"].push_back(top);
    d.logprobs["text_offset"].push_back(c.text_offset);
    c.lp_tokens.push_back(token);
    c.lp_values.push_back(finite_logprob(t.logprob));
    c.lp_top.push_back(std::move(top));
    c.lp_offsets.push_back(c.text_offset);
    c.text_offset += utf8_chars(token);  // offsets count characters, as OpenAI's and vLLM's do
  }

  void on_final(Choice& c, const EngineEvent& e, ChoiceDelta& d) {
    c.done = true;
    d.finished = true;
    c.prompt_tokens = e.prompt_tokens;
    c.cached_tokens = e.cached_prompt_tokens;
    if (!e.error.is_ok()) {
      HEARTH_LOG_ERROR("request {}: the engine failed: {}", id_, e.error.message());
      engine_error_ = e.error.message();
    }
    if (!c.stopped) {
      // Flush what the detokenizer and the stop matcher held back.
      std::string tail = c.detok.finish();
      StopResult sr = c.stop.push(tail);
      std::string rest = sr.text;
      if (!sr.stopped) {
        rest += c.stop.flush();
      } else {
        c.stopped = true;
      }
      emit_text(c, rest, d);
      switch (e.reason) {
        case FinishReason::kLength: c.finish_reason = "length"; break;
        case FinishReason::kStop: c.finish_reason = "stop"; break;
        default: c.finish_reason = c.stopped ? "stop" : "abort"; break;
      }
    }
    if (api_ == Api::kChat) {
      ParsedDelta p = c.parser.finish();
      merge(p, d);
      if (!c.parser.tool_calls().empty() && c.finish_reason == "stop") c.finish_reason = "tool_calls";
    }
    if (metrics_) {
      metrics_->request_finished(c.finish_reason, c.prompt_tokens, c.tokens);
      metrics_->observe_queue(e.queue_seconds);
    }
  }

  // One access-log line per request: what ran, for whom, how it ended, what it cost.
  void log_request(double e2e) const {
    int64_t prompt = 0, cached = 0, completion = 0;
    for (size_t i = 0; i < choices_.size(); ++i) {
      if (i % static_cast<size_t>(gen_.n) == 0) {
        prompt += choices_[i]->prompt_tokens;
        cached += choices_[i]->cached_tokens;
      }
      completion += choices_[i]->tokens;
    }
    HEARTH_LOG_INFO("{} {} {}{} n={} prompt={} cached={} completion={} finish={} e2e={:.3f}s{}", id_,
                    api_ == Api::kChat ? "chat" : "completion", gen_.stream ? "stream" : "json",
                    gen_.user.empty() ? "" : " user=" + gen_.user.substr(0, 64), choices_.size(), prompt,
                    cached, completion, choices_.empty() ? "" : choices_[0]->finish_reason, e2e,
                    gone_ ? " (client gone)" : (engine_error_.empty() ? "" : " (engine error)"));
  }

  json chunk_base() const {
    return json{{"id", id_},
                {"object", api_ == Api::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", created_},
                {"model", model_name_}};
  }

  // The common chunk (text only, no logprobs or tool calls) is formatted directly: it is the one sent
  // per token per stream, and building it as a JSON tree costs more than the rest of the token's path.
  bool fast_chunk(size_t i, Choice& c, ChoiceDelta& d, std::string& out) {
    if (!d.logprobs.is_null() || !d.tool_calls.empty()) return false;
    std::string body;
    if (api_ == Api::kChat) {
      std::string delta;
      if (!c.role_sent) {
        c.role_sent = true;
        delta += d.content.empty() ? R"("role":"assistant","content":"")" : R"("role":"assistant")";
      }
      if (!d.reasoning.empty()) {
        if (!delta.empty()) delta += ',';
        delta += R"("reasoning_content":)";
        append_json_string(delta, d.reasoning);
      }
      if (!d.content.empty()) {
        if (!delta.empty()) delta += ',';
        delta += R"("content":)";
        append_json_string(delta, d.content);
      }
      if (delta.empty() && !d.finished) return true;
      body = fmt::format(R"({{"index":{},"delta":{{{}}},"logprobs":null,"finish_reason":)", i, delta);
    } else {
      std::string text = std::move(c.echo_pending);  // echo: the prompt goes out with the first chunk
      c.echo_pending.clear();
      text += d.content;
      if (text.empty() && !d.finished) return true;
      body = fmt::format(R"({{"index":{},"text":)", i);
      append_json_string(body, text);
      body += R"(,"logprobs":null,"finish_reason":)";
    }
    if (d.finished) {
      append_json_string(body, c.finish_reason);
    } else {
      body += "null";
    }
    body += '}';
    if (chunk_prefix_.empty()) {
      std::string base = dump(chunk_base());  // {"id":..,"object":..,"created":..,"model":..}
      base.pop_back();
      chunk_prefix_ = "data: " + base + R"(,"choices":[)";
    }
    out += chunk_prefix_;
    out += body;
    out += gen_.include_usage ? R"(],"usage":null})" : "]}";
    out += "\n\n";
    return true;
  }

  void stream_out(std::vector<ChoiceDelta>& deltas) {
    std::string out;
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& c = *choices_[i];
      ChoiceDelta& d = deltas[i];
      if (fast_chunk(i, c, d, out)) continue;
      json choice;
      if (api_ == Api::kChat) {
        json delta = json::object();
        if (!c.role_sent) {
          c.role_sent = true;
          delta["role"] = "assistant";
          delta["content"] = "";
        }
        if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
        if (!d.content.empty()) delta["content"] = d.content;
        if (!d.tool_calls.empty()) {
          json calls = json::array();
          for (auto& [idx, call] : d.tool_calls) calls.push_back(tool_call_json(idx, call, true));
          delta["tool_calls"] = std::move(calls);
        }
        const bool has_delta = !delta.empty();
        if (!has_delta && d.logprobs.is_null() && !d.finished) continue;
        choice = json{{"index", i},
                      {"delta", std::move(delta)},
                      {"logprobs", d.logprobs.is_null() ? json(nullptr) : json{{"content", d.logprobs}}},
                      {"finish_reason", d.finished ? json(c.finish_reason) : json(nullptr)}};
      } else {
        std::string text = std::move(c.echo_pending);  // echo: the prompt goes out with the first chunk
        c.echo_pending.clear();
        text += d.content;
        if (text.empty() && d.logprobs.is_null() && !d.finished) continue;
        choice = json{{"index", i},
                      {"text", text},
                      {"logprobs", d.logprobs},
                      {"finish_reason", d.finished ? json(c.finish_reason) : json(nullptr)}};
      }
      json chunk = chunk_base();
      chunk["choices"] = json::array({std::move(choice)});
      if (gen_.include_usage) chunk["usage"] = nullptr;
      out += "data: ";
      out += dump(chunk);
      out += "\n\n";
    }
    if (!out.empty()) ex_->send_chunk(std::move(out));
  }

  json tool_call_json(int index, const ToolCall& call, bool stream) const {
    json j{{"id", fmt::format("call_{}_{}", id_.substr(id_.size() - 12), index)},
           {"type", "function"},
           {"function", json{{"name", call.name}, {"arguments", call.arguments}}}};
    if (stream) j["index"] = index;
    return j;
  }

  json usage() const {
    int64_t prompt = 0, cached = 0, completion = 0, reasoning = 0;
    // Each distinct prompt once (n choices share one), completions summed.
    const size_t per_prompt = static_cast<size_t>(gen_.n);
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = *choices_[i];
      if (i % per_prompt == 0) {
        prompt += c.prompt_tokens;
        cached += c.cached_tokens;
      }
      completion += c.tokens;
      reasoning += c.reasoning_tokens;
    }
    return json{{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion},
                {"prompt_tokens_details", json{{"cached_tokens", cached}}},
                {"completion_tokens_details", json{{"reasoning_tokens", reasoning}}},
                {"prompt_cache_hit_tokens", cached},
                {"prompt_cache_miss_tokens", prompt - cached}};
  }

  void finish() {
    if (answered_) return;
    answered_ = true;
    const double e2e = seconds_between(started_, Clock::now());
    if (metrics_) metrics_->observe_e2e(e2e);
    log_request(e2e);
    if (gone_) return;
    if (gen_.stream) {
      std::string out;
      if (!engine_error_.empty()) {
        ApiError e = api_error(500, "server_error", "the engine failed while generating: " + engine_error_);
        out += "data: " + dump(e.to_json()) + "\n\n";
      }
      if (gen_.include_usage) {
        json chunk = chunk_base();
        chunk["choices"] = json::array();
        chunk["usage"] = usage();
        out += "data: " + dump(chunk) + "\n\n";
      }
      out += "data: [DONE]\n\n";
      ex_->send_chunk(std::move(out));
      ex_->end_stream();
      return;
    }
    if (!engine_error_.empty()) {
      ApiError e = api_error(500, "server_error", "the engine failed while generating: " + engine_error_);
      if (metrics_) metrics_->http_response(500);
      ex_->respond(500, "application/json", dump(e.to_json()));
      return;
    }
    json choices = json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = *choices_[i];
      if (api_ == Api::kChat) {
        json msg{{"role", "assistant"}};
        const auto& calls = c.parser.tool_calls();
        msg["content"] =
            (c.parser.content().empty() && !calls.empty()) ? json(nullptr) : json(c.parser.content());
        if (model_.reasoning) {
          msg["reasoning_content"] =
              c.parser.reasoning().empty() && !c.parser.in_reasoning() && c.reasoning_tokens == 0
                  ? json(nullptr)
                  : json(c.parser.reasoning());
        }
        if (!calls.empty()) {
          json tc = json::array();
          for (size_t k = 0; k < calls.size(); ++k)
            tc.push_back(tool_call_json(static_cast<int>(k), calls[k], false));
          msg["tool_calls"] = std::move(tc);
        }
        choices.push_back(
            json{{"index", i},
                 {"message", std::move(msg)},
                 {"logprobs", gen_.logprobs ? json{{"content", c.logprobs_content}} : json(nullptr)},
                 {"finish_reason", c.finish_reason}});
      } else {
        json lp = nullptr;
        if (gen_.logprobs) {
          lp = json{{"tokens", c.lp_tokens},
                    {"token_logprobs", c.lp_values},
                    {"top_logprobs", c.lp_top},
                    {"text_offset", c.lp_offsets}};
        }
        choices.push_back(
            json{{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish_reason}});
      }
    }
    json body{{"id", id_},
              {"object", api_ == Api::kChat ? "chat.completion" : "text_completion"},
              {"created", created_},
              {"model", model_name_},
              {"choices", std::move(choices)},
              {"usage", usage()},
              {"system_fingerprint", impl_.fingerprint}};
    if (metrics_) metrics_->http_response(200);
    ex_->respond(200, "application/json", dump(body));
  }

  OpenAiService::Impl& impl_;
  const ServedModel& model_;
  ServeMetrics* metrics_;
  std::shared_ptr<Exchange> ex_;
  Api api_;
  GenerationFields gen_;
  std::string model_name_;
  Clock::time_point started_;
  std::string id_;
  int64_t created_ = 0;
  std::unordered_set<int32_t> stop_set_;
  std::string chunk_prefix_;  // "data: {\"id\":...,\"choices\":["
  std::vector<std::unique_ptr<Choice>> choices_;
  std::string engine_error_;
  bool answered_ = false;
  bool gone_ = false;

  std::mutex mu_;
  std::vector<std::pair<size_t, EngineEvent>> events_;
  bool scheduled_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------

void OpenAiService::Impl::chat(const std::shared_ptr<Exchange>& ex) {
  auto parsed = parse_chat_completion(ex->request().body(), svc.config_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(*ex, *e);
  ChatCompletionRequest& r = std::get<ChatCompletionRequest>(parsed);
  if (r.model != m().name) return send_error(*ex, model_not_found(r.model));
  if (svc.draining()) return send_refusal(*ex, shutting_down());
  if (r.tool_choice != "none" && r.tool_choice != "auto") {
    return send_error(
        *ex, api_error(400, "invalid_request_error",
                       "tool_choice 'required' or a named function needs guided decoding, which this "
                       "server does not have yet; use 'auto' (the model decides) or 'none'",
                       "tool_choice"));
  }
  auto rendered = render(r, true);
  if (auto* e = std::get_if<ApiError>(&rendered)) return send_error(*ex, *e);
  const std::string& prompt_text = std::get<std::string>(rendered);
  auto ids = m().tokenizer->encode(prompt_text, {.add_special_tokens = false});
  if (!ids.is_ok())
    return send_error(*ex, api_error(400, "invalid_request_error", ids.status().message(), "messages"));
  auto fit = fit_context(static_cast<int64_t>(ids->size()), r.gen, "messages");
  if (auto* e = std::get_if<ApiError>(&fit)) return send_error(*ex, *e);
  const int64_t max_tokens = std::get<int64_t>(fit);

  OutputParserConfig pc;
  pc.reasoning = m().reasoning;
  std::string_view tail(prompt_text);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.remove_suffix(1);
  pc.starts_in_reasoning = m().reasoning && ends_with(tail, "<think>");
  pc.tools = (r.tools && r.tool_choice != "none") ? m().tool_format : ToolCallFormat::kNone;

  auto gen = std::make_shared<Generation>(*this, m(), svc.metrics_, ex, Api::kChat, r.gen, m().name);
  std::vector<SequenceRequest> reqs;
  for (int i = 0; i < r.gen.n; ++i) {
    gen->add_choice(pc);
    SequenceRequest sr = base_request(r.gen, *ex);
    sr.prompt = *ids;
    sr.max_tokens = max_tokens;
    if (sr.sampling.seed) sr.sampling.seed = *sr.sampling.seed + static_cast<uint64_t>(i);
    if (r.json_object) sr.constraint = std::make_shared<JsonObjectConstraint>(m().json_tokens);
    reqs.push_back(std::move(sr));
  }
  if (auto e = gen->submit(std::move(reqs))) send_refusal(*ex, *e);
}

void OpenAiService::Impl::completion(const std::shared_ptr<Exchange>& ex) {
  auto parsed = parse_completion(ex->request().body(), svc.config_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(*ex, *e);
  CompletionRequest& r = std::get<CompletionRequest>(parsed);
  if (r.model != m().name) return send_error(*ex, model_not_found(r.model));
  if (svc.draining()) return send_refusal(*ex, shutting_down());
  if (r.echo && r.gen.logprobs) {
    return send_error(*ex, api_error(400, "invalid_request_error",
                                     "echo with logprobs (prompt logprobs) is not supported", "echo"));
  }
  auto gen = std::make_shared<Generation>(*this, m(), svc.metrics_, ex, Api::kCompletion, r.gen, m().name);
  std::vector<SequenceRequest> reqs;
  for (size_t p = 0; p < r.prompts.size(); ++p) {
    std::vector<int32_t> ids;
    std::string echo;
    const std::string where = r.prompts.size() > 1 ? fmt::format("prompt[{}]", p) : std::string("prompt");
    if (const auto* text = std::get_if<std::string>(&r.prompts[p])) {
      auto enc = m().tokenizer->encode(*text);
      if (!enc.is_ok())
        return send_error(*ex, api_error(400, "invalid_request_error", enc.status().message(), where));
      ids = std::move(*enc);
      if (r.echo) echo = *text;
    } else {
      ids = std::get<std::vector<int32_t>>(r.prompts[p]);
      for (size_t k = 0; k < ids.size(); ++k) {
        if (ids[k] < 0 || ids[k] >= m().vocab_size) {
          return send_error(
              *ex, api_error(400, "invalid_request_error",
                             fmt::format("{}[{}] = {} is not a token id of this model (0 to {})", where, k,
                                         ids[k], m().vocab_size - 1),
                             where));
        }
      }
      if (r.echo) {
        auto dec = m().tokenizer->decode(ids);
        if (dec.is_ok()) echo = std::move(*dec);
      }
    }
    if (ids.empty())
      return send_error(*ex, api_error(400, "invalid_request_error", "the prompt is empty", where));
    auto fit = fit_context(static_cast<int64_t>(ids.size()), r.gen, "prompt");
    if (auto* e = std::get_if<ApiError>(&fit)) return send_error(*ex, *e);
    for (int i = 0; i < r.gen.n; ++i) {
      gen->add_choice(OutputParserConfig{}, echo);
      SequenceRequest sr = base_request(r.gen, *ex);
      sr.prompt = ids;
      sr.max_tokens = std::get<int64_t>(fit);
      if (sr.sampling.seed) sr.sampling.seed = *sr.sampling.seed + static_cast<uint64_t>(i);
      reqs.push_back(std::move(sr));
    }
  }
  if (auto e = gen->submit(std::move(reqs))) send_refusal(*ex, *e);
}

OpenAiService::OpenAiService(ServedModel model, ServiceConfig config, ServeMetrics* metrics)
    : model_(std::move(model)),
      config_(std::move(config)),
      metrics_(metrics),
      impl_(std::make_unique<Impl>(*this)) {
  if (!config_.api_key.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(config_.api_key.data()), config_.api_key.size(),
           impl_->key_hash.data());
  }
  impl_->fingerprint = "hearth";
}

OpenAiService::~OpenAiService() = default;

void OpenAiService::handle(std::shared_ptr<Exchange> ex) {
  impl_->handle(ex);
}

}  // namespace hearth::server
