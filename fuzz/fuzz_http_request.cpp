// libFuzzer target for the HTTP/1.1 request reading of HttpServer, without sockets: the bytes go to
// boost::beast::http::request_parser<string_body> used as Session uses it (body and header limits;
// the header fed by hand with its consumed bytes counted, then the body read eagerly; pipelined
// requests parsed from the leftover bytes with a fresh parser), arriving in two writes.
// Input: [limits][split] then the raw bytes. Checked: no crash; the bytes held for an unfinished
// header stay under the header limit; a body fits the body limit; and the two-write run gives the
// same requests as a one-write run (see below for how the ending may differ).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "server/http_server.h"

namespace {

namespace http = boost::beast::http;

struct Limits {
  uint64_t body;
  uint32_t header;
};

// One outcome of reading: a request, or the error that ends the connection.
struct Outcome {
  bool done = false;
  boost::system::error_code ec;
  std::string method, target, body;
  unsigned version = 0;
  size_t fields = 0;
  bool keep_alive = false;
  bool expect_continue = false;
  bool operator==(const Outcome& o) const {
    return done == o.done && ec == o.ec && method == o.method && target == o.target && body == o.body &&
           version == o.version && fields == o.fields && keep_alive == o.keep_alive &&
           expect_continue == o.expect_continue;
  }
};

class Reader {
 public:
  explicit Reader(Limits limits) : limits_(limits) { reset(); }

  // Parses what the buffered bytes allow; false once the connection would be closed.
  bool feed(std::string_view bytes) {
    buf_.append(bytes);
    for (;;) {
      if (buf_.empty()) return true;
      boost::system::error_code ec;
      const size_t used = parser_->put(boost::asio::buffer(buf_.data(), buf_.size()), ec);
      buf_.erase(0, used);
      if (!header_done_) {
        // Session::read_header counts the header bytes the parser consumed.
        header_bytes_ += used;
        if (header_bytes_ > limits_.header) return fail(http::error::header_limit);
        // What the parser leaves unconsumed waits in the session's buffer: bounded as well.
        if (ec == http::error::need_more && buf_.size() >= limits_.header) std::abort();
      }
      if (ec == http::error::need_more) {
        if (used == 0) return true;
        continue;
      }
      if (ec) return fail(ec);
      if (parser_->is_header_done() && !header_done_) {
        header_done_ = true;
        parser_->eager(true);  // as http::async_read reads the body
      }
      if (parser_->is_done()) {
        finish_request();
        continue;
      }
      if (used == 0) return true;
    }
  }

  // The client closed: what http::read reports then (the session closes the connection).
  void eof() {
    if (closed_) return;
    if (!parser_->got_some()) {
      fail(http::error::end_of_stream);
      return;
    }
    boost::system::error_code ec;
    parser_->put_eof(ec);
    if (!ec && parser_->is_done()) finish_request();
    fail(ec ? ec : http::make_error_code(http::error::end_of_stream));
  }

  const std::vector<Outcome>& outcomes() const { return outcomes_; }

 private:
  void reset() {
    parser_.emplace();
    parser_->body_limit(limits_.body);
    parser_->header_limit(limits_.header);
    header_done_ = false;
    header_bytes_ = 0;
  }

  bool fail(boost::system::error_code ec) {
    if (ec.category() != http::make_error_code(http::error::bad_method).category()) std::abort();
    Outcome o;
    o.ec = ec;
    outcomes_.push_back(std::move(o));
    closed_ = true;
    return false;
  }

  void finish_request() {
    const auto req = parser_->release();
    if (req.body().size() > limits_.body) std::abort();
    Outcome o;
    o.done = true;
    o.method = std::string(req.method_string());
    o.target = std::string(req.target());
    o.body = req.body();
    o.version = req.version();
    o.keep_alive = req.keep_alive();
    o.expect_continue = req[http::field::expect] == "100-continue";
    for (auto it = req.begin(); it != req.end(); ++it) ++o.fields;
    // What the session and its handlers read of a request.
    const std::string_view target = o.target;
    (void)target.substr(0, target.find('?'));
    (void)req.find("Authorization");
    (void)(req.method() == http::verb::head);
    outcomes_.push_back(std::move(o));
    reset();
  }

  Limits limits_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string buf_;
  bool header_done_ = false;
  size_t header_bytes_ = 0;
  bool closed_ = false;
  std::vector<Outcome> outcomes_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const hearth::server::HttpServerConfig defaults;
  const std::array<uint32_t, 4> header_limits = {64, 1024, 8192,
                                                 static_cast<uint32_t>(defaults.max_header_bytes)};
  const std::array<uint64_t, 4> body_limits = {0, 64, 4096, defaults.max_body_bytes};
  const Limits limits{body_limits[(data[0] >> 2) & 3], header_limits[data[0] & 3]};
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t cut = bytes.size() * data[1] / 255;

  Reader one(limits);
  if (one.feed(bytes)) one.eof();
  Reader two(limits);
  if (two.feed(bytes.substr(0, cut)) && two.feed(bytes.substr(cut))) two.eof();
  // The same requests either way, up to where the runs may legitimately part: how Beast 1.74 applies
  // header_limit depends on how the bytes arrived (the request line and the fields are limited
  // separately when parsed in one call, together when the first bytes came alone), and a malformed
  // header without its blank line is "bad field" when the bytes came at once but still incomplete
  // ("partial message" at EOF) when they came in pieces. A body over the limit is found either way.
  const auto& a = one.outcomes();
  const auto& b = two.outcomes();
  if (a.empty() || b.empty() || a.back().done || b.back().done) std::abort();  // both end closed
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] == b[i]) continue;
    if (a[i].done && b[i].done) std::abort();  // the same bytes gave two different requests
    if (a[i].ec == http::error::header_limit || b[i].ec == http::error::header_limit) break;
    if (a[i].done || b[i].done) std::abort();
    if ((a[i].ec == http::error::body_limit) != (b[i].ec == http::error::body_limit)) std::abort();
    break;
  }
  return 0;
}
