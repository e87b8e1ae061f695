#include "engine/generator.h"

#include <algorithm>
#include <chrono>

namespace hearth {

namespace {
struct SeqState {
  std::vector<int32_t> tokens;  // prompt + generated
  int64_t prompt_len = 0;
  int64_t computed = 0;  // tokens whose K/V are cached
  std::vector<int32_t> blocks;
  Sampler sampler;
  bool done = false;
  SeqState(const GenerateRequest& r, int64_t vocab)
      : tokens(r.prompt), prompt_len(static_cast<int64_t>(r.prompt.size())), sampler(r.sampling, vocab) {
    sampler.add_prompt(r.prompt);
  }
};
}  // namespace

Result<std::vector<GenerateResult>> generate(ModelRunner& runner, std::span<const GenerateRequest> requests,
                                             const GenerateOptions& options, GenerateStats* stats) {
  if (options.prefill_chunk < 1) return make_error(ErrorCode::kInvalidArgument, "prefill_chunk must be >= 1");
  const int64_t vocab = runner.spec().vocab_size;
  std::vector<SeqState> seqs;
  seqs.reserve(requests.size());
  std::vector<GenerateResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateRequest& r = requests[i];
    if (r.prompt.empty())
      return make_error(ErrorCode::kInvalidArgument, "request {}: the prompt is empty", i);
    if (r.max_tokens < 0)
      return make_error(ErrorCode::kInvalidArgument, "request {}: max_tokens must be >= 0", i);
    HEARTH_RETURN_IF_ERROR(r.sampling.validate().with_context(fmt::format("request {}", i)));
    if (static_cast<int64_t>(r.prompt.size()) + r.max_tokens > runner.max_context()) {
      return make_error(ErrorCode::kOutOfRange,
                        "request {}: prompt ({} tokens) + max_tokens ({}) exceeds the context of {}", i,
                        r.prompt.size(), r.max_tokens, runner.max_context());
    }
    seqs.emplace_back(r, vocab);
    if (r.max_tokens == 0) {
      seqs.back().done = true;
      results[i].finish_reason = "length";
    }
  }
  GenerateStats local;
  GenerateStats& st = stats ? *stats : local;
  std::vector<float> logits;
  Status status = Status::ok();
  for (;;) {
    ForwardBatch batch;
    std::vector<size_t> owners;
    bool has_prefill = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      SeqState& s = seqs[i];
      if (s.done) continue;
      const int64_t remaining = static_cast<int64_t>(s.tokens.size()) - s.computed;
      const int64_t take = std::min(remaining, options.prefill_chunk);
      status = runner.blocks().ensure_capacity(s.blocks, s.computed + take, runner.kv().block_size());
      if (!status.is_ok()) break;
      SequenceChunk c;
      c.tokens = std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.computed),
                                                            static_cast<size_t>(take));
      c.start_pos = s.computed;
      c.block_table = s.blocks;
      c.want_logits = s.computed + take == static_cast<int64_t>(s.tokens.size());
      if (s.computed < s.prompt_len) {
        has_prefill = true;
        st.prefill_tokens += take;
      } else {
        st.decode_tokens += take;
      }
      batch.chunks.push_back(c);
      owners.push_back(i);
    }
    if (!status.is_ok() || batch.chunks.empty()) break;
    const auto t0 = std::chrono::steady_clock::now();
    status = runner.forward(batch, logits);
    if (!status.is_ok()) break;
    int64_t row = 0;
    for (size_t j = 0; j < batch.chunks.size(); ++j) {
      SeqState& s = seqs[owners[j]];
      GenerateResult& out = results[owners[j]];
      s.computed += static_cast<int64_t>(batch.chunks[j].tokens.size());
      if (!batch.chunks[j].want_logits) continue;
      const std::span<const float> lrow(logits.data() + row * vocab, static_cast<size_t>(vocab));
      ++row;
      SampledToken tok = s.sampler.sample(lrow);
      const GenerateRequest& req = requests[owners[j]];
      out.ids.push_back(tok.id);
      s.tokens.push_back(tok.id);
      if (options.on_token) options.on_token(owners[j], tok);
      out.steps.push_back(std::move(tok));
      const bool stop =
          std::find(req.stop_ids.begin(), req.stop_ids.end(), out.ids.back()) != req.stop_ids.end();
      if (stop || static_cast<int64_t>(out.ids.size()) >= req.max_tokens) {
        s.done = true;
        out.finish_reason = stop ? "stop" : "length";
        runner.blocks().release(s.blocks);
      }
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (has_prefill ? st.prefill_seconds : st.decode_seconds) += dt;
    ++st.steps;
  }
  for (SeqState& s : seqs) runner.blocks().release(s.blocks);
  if (!status.is_ok()) return status;
  return results;
}

}  // namespace hearth
