// Tokenizer throughput: hearth's encoder on the conformance corpus, shaped like the HF baseline
// (bench/tokenizer/hf_tokenizers_bench.py builds the identical text).
//   tokenizer_bench --tokenizer DIR --corpus tests/fixtures/tokenizer/corpus.jsonl [--mb 10] [--runs 5]
//                   [--threads N] [--json FILE]
// Modes: one string of ~N MB (single thread); the same text encoded line by line (single thread);
// line by line on N threads.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "model/tokenizer/tokenizer.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == name) return argv[i + 1];
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = arg(argc, argv, "--tokenizer", "");
  const std::string corpus_path = arg(argc, argv, "--corpus", "tests/fixtures/tokenizer/corpus.jsonl");
  const double mb = std::stod(arg(argc, argv, "--mb", "10"));
  const int runs = std::stoi(arg(argc, argv, "--runs", "5"));
  const int threads =
      std::stoi(arg(argc, argv, "--threads", std::to_string(std::thread::hardware_concurrency()).c_str()));
  const std::string json_out = arg(argc, argv, "--json", "");
  if (dir.empty()) {
    std::fprintf(stderr,
                 "usage: tokenizer_bench --tokenizer DIR [--corpus FILE] [--mb 10] [--runs 5] [--threads N] "
                 "[--json FILE]\n");
    return 2;
  }
  auto t0 = Clock::now();
  auto tok = tok::Tokenizer::load_dir(dir);
  if (!tok.is_ok()) {
    std::fprintf(stderr, "error: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // text = "\n".join(lines), repeated (joined by "\n") until >= mb MB.
  std::vector<std::string> lines;
  {
    std::ifstream in(corpus_path);
    std::string l;
    while (std::getline(in, l)) {
      if (!l.empty()) lines.push_back(nlohmann::json::parse(l).get<std::string>());
    }
  }
  std::string block;
  for (size_t i = 0; i < lines.size(); ++i) block += (i ? "\n" : "") + lines[i];
  const auto target = static_cast<size_t>(mb * 1e6);
  std::string text = block;
  std::vector<std::string> all_lines = lines;
  while (text.size() < target) {
    text += "\n" + block;
    all_lines.insert(all_lines.end(), lines.begin(), lines.end());
  }
  const double text_mb = static_cast<double>(text.size()) / 1e6;

  tok::EncodeOptions opt;
  opt.add_special_tokens = false;
  size_t n_tokens = 0;
  std::vector<double> single, by_line, parallel;
  for (int r = 0; r < runs + 1; ++r) {  // first run warms the cache and is discarded
    auto s = Clock::now();
    auto ids = (*tok)->encode(text, opt);
    double dt = std::chrono::duration<double>(Clock::now() - s).count();
    n_tokens = ids->size();
    if (r > 0) single.push_back(text_mb / dt);
  }
  for (int r = 0; r < runs; ++r) {
    auto s = Clock::now();
    size_t n = 0;
    for (const auto& l : all_lines) n += (*tok)->encode(l, opt)->size();
    double dt = std::chrono::duration<double>(Clock::now() - s).count();
    by_line.push_back(text_mb / dt);
    (void)n;
  }
  for (int r = 0; r < runs; ++r) {
    std::atomic<size_t> next{0};
    auto s = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(64)) < all_lines.size();) {
          for (size_t j = i; j < std::min(i + 64, all_lines.size()); ++j)
            (void)(*tok)->encode(all_lines[j], opt);
        }
      });
    }
    for (auto& th : pool) th.join();
    double dt = std::chrono::duration<double>(Clock::now() - s).count();
    parallel.push_back(text_mb / dt);
  }
  std::printf("tokenizer: %s\n", dir.c_str());
  std::printf("load: %.3f s; text: %.2f MB, %zu lines, %zu tokens\n", load_s, text_mb, all_lines.size(),
              n_tokens);
  std::printf("%-34s %10s\n", "mode", "MB/s (median)");
  std::printf("%-34s %10.2f\n", "one string, 1 thread", median(single));
  std::printf("%-34s %10.2f\n", "by line, 1 thread", median(by_line));
  std::printf("%-34s %10.2f\n", ("by line, " + std::to_string(threads) + " threads").c_str(),
              median(parallel));
  if (!json_out.empty()) {
    nlohmann::json j{{"tokenizer", dir},
                     {"load_s", load_s},
                     {"text_mb", text_mb},
                     {"tokens", n_tokens},
                     {"single_mb_s", median(single)},
                     {"by_line_mb_s", median(by_line)},
                     {"parallel_mb_s", median(parallel)},
                     {"threads", threads}};
    std::ofstream(json_out) << j.dump(2) << "\n";
  }
  return 0;
}
