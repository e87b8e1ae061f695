#include "ops/bench/load_generator.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace hearth::ops {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string_view error_class_name(ErrorClass c) {
  switch (c) {
    case ErrorClass::kNone: return "none";
    case ErrorClass::kHttp4xx: return "http_4xx";
    case ErrorClass::kHttp5xx: return "http_5xx";
    case ErrorClass::kTimeout: return "timeout";
    case ErrorClass::kConnect: return "connect";
    case ErrorClass::kBrokenStream: return "broken_stream";
  }
  return "?";
}

Result<Endpoint> parse_url(const std::string& url) {
  Endpoint e;
  std::string_view u(url);
  if (u.substr(0, 8) == "https://") {
    return make_error(ErrorCode::kUnsupported,
                      "--url {}: https is not supported by hearth bench; bench the plain-http upstream", url);
  }
  if (u.substr(0, 7) != "http://")
    return make_error(ErrorCode::kInvalidArgument, "--url {}: expected http://HOST:PORT", url);
  u.remove_prefix(7);
  const size_t slash = u.find('/');
  std::string_view hostport = u.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view("/v1") : u.substr(slash);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/") path = "/v1";
  uint32_t port = 80;
  std::string_view host = hostport;
  std::string_view port_text;
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:8000
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos)
      return make_error(ErrorCode::kInvalidArgument, "--url {}: bad IPv6 host", url);
    host = hostport.substr(1, close - 1);
    const std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
      port_text = rest.substr(1);
      if (port_text.empty()) return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
    }
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port_text = hostport.substr(colon + 1);
    if (port_text.empty()) return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
  }
  if (!port_text.empty()) {
    port = 0;
    if (port_text.size() > 5) return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
    for (char c : port_text) {
      if (c < '0' || c > '9') return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
      port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return make_error(ErrorCode::kInvalidArgument, "--url {}: bad port", url);
  }
  hostport = host;
  if (hostport.empty()) return make_error(ErrorCode::kInvalidArgument, "--url {}: no host", url);
  e.host = std::string(hostport);
  e.port = static_cast<uint16_t>(port);
  e.base_path = std::string(path);
  return e;
}

namespace {

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string build_body(const Endpoint& ep, const BenchPrompt& p) {
  nlohmann::json j;
  j["model"] = ep.model;
  if (ep.chat) {
    if (!p.messages_json.empty()) {
      j["messages"] = nlohmann::json::parse(p.messages_json, nullptr, false);
    } else {
      j["messages"] = nlohmann::json::array({nlohmann::json{{"role", "user"}, {"content", p.text}}});
    }
  } else if (!p.token_ids.empty()) {
    j["prompt"] = p.token_ids;
  } else {
    j["prompt"] = p.text;
  }
  if (p.output_tokens > 0) j["max_tokens"] = p.output_tokens;
  j["temperature"] = ep.temperature;
  j["stream"] = true;
  j["stream_options"] = nlohmann::json{{"include_usage", true}};
  if (ep.ignore_eos) j["ignore_eos"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Whether an SSE data payload carries generated text: a non-empty "content", "text" or
// "reasoning_content" string, or tool calls. A scan, not a parse: it runs once per streamed chunk.
bool has_text(std::string_view d) {
  for (std::string_view key : {std::string_view(R"("content":")"), std::string_view(R"("text":")"),
                               std::string_view(R"("reasoning_content":")")}) {
    size_t pos = 0;
    while ((pos = d.find(key, pos)) != std::string_view::npos) {
      pos += key.size();
      if (pos < d.size() && d[pos] != '"') return true;
    }
  }
  return d.find(R"("tool_calls":[{)") != std::string_view::npos;
}

struct Shared {
  const LoadConfig& cfg;
  std::vector<std::string> bodies;
  std::vector<int64_t> input_tokens;
  std::atomic<int64_t> next{0};  // request slots claimed
  int64_t limit = 0;             // slots in this phase (0: unbounded)
  Clock::time_point phase_start;
  double phase_duration = 0;  // 0: unbounded
  bool warmup = false;
  std::atomic<int64_t> done{0}, failed{0}, tokens{0};
  std::mutex mu;
  std::vector<RequestRecord> records;
  std::string target;
  std::string host_header;
  tcp::endpoint endpoint;

  explicit Shared(const LoadConfig& c) : cfg(c) {}

  // Claims the next request; false when the phase is over.
  bool claim(int64_t* index) {
    if (phase_duration > 0 && secs(Clock::now() - phase_start) >= phase_duration) return false;
    const int64_t i = next.fetch_add(1);
    if (limit > 0 && i >= limit) return false;
    *index = i;
    return true;
  }
  void record(RequestRecord r) {
    if (r.ok) {
      done.fetch_add(1, std::memory_order_relaxed);
      tokens.fetch_add(r.output_tokens, std::memory_order_relaxed);
    } else {
      failed.fetch_add(1, std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lock(mu);
    records.push_back(std::move(r));
  }
};

// One streamed request on an open connection. Leaves `s` usable when the response completed cleanly
// and keep-alive holds; otherwise sets *reusable = false.
net::awaitable<void> one_request(beast::tcp_stream& s, beast::flat_buffer& buf, Shared& sh, int64_t index,
                                 RequestRecord& rec, bool* reusable) {
  const LoadConfig& cfg = sh.cfg;
  const size_t which = static_cast<size_t>(index) % sh.bodies.size();
  http::request<http::string_body> req(http::verb::post, sh.target, 11);
  req.set(http::field::host, sh.host_header);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.set(http::field::user_agent, "hearth-bench");
  if (!cfg.endpoint.api_key.empty()) req.set(http::field::authorization, "Bearer " + cfg.endpoint.api_key);
  if (!cfg.endpoint.tenant.empty()) req.set("x-hearth-tenant", cfg.endpoint.tenant);
  req.body() = sh.bodies[which];
  req.prepare_payload();
  rec.input_tokens = sh.input_tokens[which];

  const Clock::time_point t0 = Clock::now();
  rec.start = secs(t0 - sh.phase_start);
  beast::error_code ec;
  s.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.timeout_s)));
  co_await http::async_write(s, req, net::redirect_error(net::use_awaitable, ec));
  http::response_parser<http::buffer_body> p;
  p.body_limit(std::uint64_t{1} << 40);  // streams are long; error bodies are read only in part
  if (!ec) co_await http::async_read_header(s, buf, p, net::redirect_error(net::use_awaitable, ec));
  auto fail = [&](ErrorClass c, std::string detail) {
    rec.ok = false;
    rec.error = c;
    rec.error_detail = std::move(detail);
    rec.e2e = secs(Clock::now() - t0);
    *reusable = false;
  };
  if (ec) {
    fail(ec == beast::error::timeout ? ErrorClass::kTimeout : ErrorClass::kConnect, ec.message());
    co_return;
  }
  rec.status = p.get().result_int();
  std::string pending;  // SSE bytes not yet split into events
  char chunk[16384];
  bool done_marker = false;
  bool error_event = false;
  Clock::time_point last_text{};
  bool got_text = false;
  int64_t text_chunks = 0;
  std::string usage_event;
  std::string error_body;
  while (!p.is_done()) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    // read_some: hand over what has arrived (read would wait to fill the buffer, hiding the timing).
    co_await http::async_read_some(s, buf, p, net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;
    const size_t n = sizeof chunk - p.get().body().size;
    if (rec.status != 200) {
      if (error_body.size() < 200) error_body.append(chunk, std::min(n, 200 - error_body.size()));
      continue;
    }
    pending.append(chunk, n);
    size_t start = 0;
    for (;;) {
      size_t end = pending.find("\n\n", start);
      size_t sep = 2;
      const size_t crlf = pending.find("\r\n\r\n", start);
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
        end = crlf;
        sep = 4;
      }
      if (end == std::string::npos) break;
      std::string_view event(pending.data() + start, end - start);
      start = end + sep;
      // Each line "data: payload"; a multi-line data event concatenates, which OpenAI servers do not use.
      size_t line_start = 0;
      while (line_start < event.size()) {
        size_t line_end = event.find('\n', line_start);
        if (line_end == std::string_view::npos) line_end = event.size();
        std::string_view line = event.substr(line_start, line_end - line_start);
        line_start = line_end + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.substr(0, 5) != "data:") continue;
        std::string_view data = line.substr(5);
        if (!data.empty() && data.front() == ' ') data.remove_prefix(1);
        if (data == "[DONE]") {
          done_marker = true;
          continue;
        }
        if (data.substr(0, 9) == R"({"error":)") {
          error_event = true;
          error_body = std::string(data.substr(0, 200));
          continue;
        }
        if (has_text(data)) {
          const Clock::time_point now = Clock::now();
          if (!got_text) {
            got_text = true;
            rec.ttft = secs(now - t0);
          } else {
            rec.itl.push_back(secs(now - last_text));
          }
          last_text = now;
          ++text_chunks;
        }
        if (data.find(R"("usage":{)") != std::string_view::npos) usage_event = std::string(data);
      }
    }
    pending.erase(0, start);
  }
  rec.e2e = secs(Clock::now() - t0);
  if (ec) {
    fail(ec == beast::error::timeout ? ErrorClass::kTimeout : ErrorClass::kBrokenStream, ec.message());
    co_return;
  }
  if (rec.status != 200) {
    fail(rec.status >= 500 ? ErrorClass::kHttp5xx : ErrorClass::kHttp4xx,
         fmt::format("HTTP {}: {}", rec.status, error_body));
    *reusable = p.keep_alive();
    co_return;
  }
  if (!done_marker || error_event) {
    fail(ErrorClass::kBrokenStream, error_event ? error_body : "the stream ended without data: [DONE]");
    co_return;
  }
  rec.output_tokens = text_chunks;
  if (!usage_event.empty()) {
    const auto j = nlohmann::json::parse(usage_event, nullptr, false);
    if (j.is_object() && j.contains("usage") && j["usage"].is_object()) {
      const auto& u = j["usage"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        rec.output_tokens = u["completion_tokens"].get<int64_t>();
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
        rec.input_tokens = u["prompt_tokens"].get<int64_t>();
    }
  }
  rec.ok = true;
  *reusable = p.keep_alive();
}

net::awaitable<bool> connect(beast::tcp_stream& s, Shared& sh, RequestRecord& rec) {
  beast::error_code ec;
  s.expires_after(std::chrono::seconds(10));
  co_await s.async_connect(sh.endpoint, net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    rec.ok = false;
    rec.error = ec == beast::error::timeout ? ErrorClass::kTimeout : ErrorClass::kConnect;
    rec.error_detail = fmt::format("connect to {}:{}: {}", sh.endpoint.address().to_string(),
                                   sh.endpoint.port(), ec.message());
    co_return false;
  }
  beast::error_code ignored;
  s.socket().set_option(tcp::no_delay(true), ignored);
  co_return true;
}

// Closed loop: one connection, requests back to back.
net::awaitable<void> worker(Shared& sh) {
  auto ex = co_await net::this_coro::executor;
  std::unique_ptr<beast::tcp_stream> s;
  beast::flat_buffer buf;
  int64_t index = 0;
  while (sh.claim(&index)) {
    RequestRecord rec;
    rec.warmup = sh.warmup;
    if (!s) {
      s = std::make_unique<beast::tcp_stream>(ex);
      buf.clear();
      if (!co_await connect(*s, sh, rec)) {
        rec.start = secs(Clock::now() - sh.phase_start);
        s.reset();
        sh.record(std::move(rec));
        continue;
      }
    }
    bool reusable = true;
    co_await one_request(*s, buf, sh, index, rec, &reusable);
    if (!reusable) s.reset();
    sh.record(std::move(rec));
  }
}

// Open loop: one request on its own connection from a small per-thread pool.
struct Pool {
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;
};

net::awaitable<void> open_request(Shared& sh, Pool& pool, int64_t index,
                                  std::shared_ptr<std::atomic<int>> in_flight) {
  auto ex = co_await net::this_coro::executor;
  RequestRecord rec;
  rec.warmup = sh.warmup;
  std::unique_ptr<beast::tcp_stream> s;
  if (!pool.idle.empty()) {
    s = std::move(pool.idle.back());
    pool.idle.pop_back();
  } else {
    s = std::make_unique<beast::tcp_stream>(ex);
    if (!co_await connect(*s, sh, rec)) {
      sh.record(std::move(rec));
      in_flight->fetch_sub(1);
      co_return;
    }
  }
  beast::flat_buffer buf;
  bool reusable = true;
  co_await one_request(*s, buf, sh, index, rec, &reusable);
  if (reusable && buf.size() == 0) pool.idle.push_back(std::move(s));
  sh.record(std::move(rec));
  in_flight->fetch_sub(1);
}

net::awaitable<void> arrivals(Shared& sh, Pool& pool, double rate, uint64_t seed, int cap) {
  auto ex = co_await net::this_coro::executor;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  net::steady_timer timer(ex);
  auto in_flight = std::make_shared<std::atomic<int>>(0);
  Clock::time_point next = Clock::now();
  int64_t index = 0;
  while (sh.claim(&index)) {
    next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    timer.expires_at(next);
    co_await timer.async_wait(net::use_awaitable);
    while (cap > 0 && in_flight->load() >= cap) {  // --concurrency caps an open loop
      timer.expires_after(std::chrono::milliseconds(1));
      co_await timer.async_wait(net::use_awaitable);
    }
    in_flight->fetch_add(1);
    net::co_spawn(ex, open_request(sh, pool, index, in_flight), net::detached);
  }
  while (in_flight->load() > 0) {
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(net::use_awaitable);
  }
}

Status run_phase(Shared& sh, int64_t requests, double duration, bool warmup) {
  const LoadConfig& cfg = sh.cfg;
  sh.next = 0;
  sh.limit = requests;
  sh.phase_duration = duration;
  sh.warmup = warmup;
  sh.phase_start = Clock::now();
  const int threads = std::max(1, cfg.threads);
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<Pool> pools(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) iocs.push_back(std::make_unique<net::io_context>(1));
  if (cfg.rate && !warmup) {
    for (int t = 0; t < threads; ++t) {
      const int cap = cfg.concurrency > 0 ? std::max(1, cfg.concurrency / threads) : 0;
      net::co_spawn(*iocs[static_cast<size_t>(t)],
                    arrivals(sh, pools[static_cast<size_t>(t)], *cfg.rate / threads,
                             cfg.seed + static_cast<uint64_t>(t) * 7919, cap),
                    net::detached);
    }
  } else {
    const int workers = std::max(1, cfg.concurrency);
    for (int w = 0; w < workers; ++w)
      net::co_spawn(*iocs[static_cast<size_t>(w % threads)], worker(sh), net::detached);
  }
  std::atomic<bool> running{true};
  std::thread progress;
  if (cfg.progress && !warmup) {
    progress = std::thread([&] {
      while (running.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        if (!running.load()) break;
        cfg.progress(sh.done.load(), sh.failed.load(), sh.tokens.load(), secs(Clock::now() - sh.phase_start));
      }
    });
  }
  std::vector<std::thread> ts;
  for (int t = 1; t < threads; ++t) ts.emplace_back([&, t] { iocs[static_cast<size_t>(t)]->run(); });
  iocs[0]->run();
  for (auto& t : ts) t.join();
  running = false;
  if (progress.joinable()) progress.join();
  if (cfg.progress && !warmup)
    cfg.progress(sh.done.load(), sh.failed.load(), sh.tokens.load(), secs(Clock::now() - sh.phase_start));
  return Status::ok();
}

Result<tcp::endpoint> resolve(const Endpoint& ep) {
  net::io_context ioc;
  tcp::resolver r(ioc);
  beast::error_code ec;
  auto results = r.resolve(ep.host, std::to_string(ep.port), ec);
  if (ec || results.empty())
    return make_error(ErrorCode::kNotFound, "cannot resolve {}: {}", ep.host,
                      ec ? ec.message() : "no address");
  return results.begin()->endpoint();
}

}  // namespace

Result<LoadResult> run_load(const LoadConfig& cfg, const std::vector<BenchPrompt>& prompts) {
  if (prompts.empty()) return make_error(ErrorCode::kInvalidArgument, "no prompts to send");
  if (cfg.requests <= 0 && cfg.duration_s <= 0)
    return make_error(ErrorCode::kInvalidArgument, "give --requests or --duration (or both)");
  if (cfg.rate && !(*cfg.rate > 0)) return make_error(ErrorCode::kInvalidArgument, "--rate must be > 0");
  if (!cfg.rate && cfg.concurrency < 1)
    return make_error(ErrorCode::kInvalidArgument, "--concurrency must be >= 1");
  Shared sh(cfg);
  HEARTH_ASSIGN_OR_RETURN(sh.endpoint, resolve(cfg.endpoint));
  sh.target = cfg.endpoint.base_path + (cfg.endpoint.chat ? "/chat/completions" : "/completions");
  sh.host_header = fmt::format("{}:{}", cfg.endpoint.host, cfg.endpoint.port);
  // Bodies in a seeded shuffled order: the same seed sends the same sequence.
  std::vector<size_t> order(prompts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(cfg.seed);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i : order) {
    sh.bodies.push_back(build_body(cfg.endpoint, prompts[i]));
    sh.input_tokens.push_back(prompts[i].input_tokens);
  }
  LoadResult out;
  if (cfg.warmup_requests > 0) {
    HEARTH_RETURN_IF_ERROR(run_phase(sh, cfg.warmup_requests, 0, true));
    out.warmup_done = static_cast<int64_t>(sh.records.size());
    sh.records.clear();
    sh.done = 0;
    sh.failed = 0;
    sh.tokens = 0;
  }
  const Clock::time_point t0 = Clock::now();
  HEARTH_RETURN_IF_ERROR(run_phase(sh, cfg.requests, cfg.duration_s, false));
  out.duration_s = secs(Clock::now() - t0);
  out.records = std::move(sh.records);
  return out;
}

Result<std::string> discover_model(const Endpoint& ep, double timeout_s) {
  HEARTH_ASSIGN_OR_RETURN(tcp::endpoint addr, resolve(ep));
  net::io_context ioc;
  beast::tcp_stream s(ioc);
  s.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  beast::error_code ec;
  s.connect(addr, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot connect to {}:{}: {}", ep.host, ep.port, ec.message());
  http::request<http::empty_body> req(http::verb::get, ep.base_path + "/models", 11);
  req.set(http::field::host, fmt::format("{}:{}", ep.host, ep.port));
  if (!ep.api_key.empty()) req.set(http::field::authorization, "Bearer " + ep.api_key);
  http::write(s, req, ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> p;
  p.body_limit(16u << 20);
  if (!ec) http::read(s, buf, p, ec);
  if (ec) return make_error(ErrorCode::kIo, "GET {}/models: {}", ep.base_path, ec.message());
  if (p.get().result_int() != 200)
    return make_error(ErrorCode::kIo, "GET {}/models: HTTP {}: {}", ep.base_path, p.get().result_int(),
                      p.get().body().substr(0, 200));
  const auto j = nlohmann::json::parse(p.get().body(), nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].is_object() || !j["data"][0].contains("id") || !j["data"][0]["id"].is_string())
    return make_error(ErrorCode::kCorrupt, "GET {}/models: no model listed; give --model", ep.base_path);
  return j["data"][0]["id"].get<std::string>();
}

}  // namespace hearth::ops
