#include "engine/generator.h"

#include <chrono>
#include <unordered_map>

#include "engine/scheduler.h"

namespace hearth {

Result<std::vector<GenerateResult>> generate(ModelRunner& runner, std::span<const GenerateRequest> requests,
                                             const GenerateOptions& options, GenerateStats* stats) {
  SchedulerConfig cfg;
  cfg.max_batched_tokens = options.max_batched_tokens;
  cfg.max_num_seqs = options.max_num_seqs;
  cfg.max_waiting = static_cast<int64_t>(requests.size());
  HEARTH_RETURN_IF_ERROR(cfg.validate());
  const int64_t vocab = runner.spec().vocab_size;
  std::vector<GenerateResult> results(requests.size());
  // Validate everything before anything runs.
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
    for (int32_t t : r.prompt)
      if (t < 0 || t >= vocab) {
        return make_error(ErrorCode::kInvalidArgument,
                          "request {}: token id {} is outside the vocabulary [0, {})", i, t, vocab);
      }
  }
  Scheduler sched(cfg, runner.blocks());
  std::unordered_map<uint64_t, Sampler> samplers;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateRequest& r = requests[i];
    if (r.max_tokens == 0) {
      results[i].finish_reason = "length";
      continue;
    }
    SequenceRequest sr;
    sr.prompt = r.prompt;
    sr.max_tokens = r.max_tokens;
    sr.sampling = r.sampling;
    sr.stop_ids = r.stop_ids;
    auto seq = std::make_unique<Sequence>(i, std::move(sr));
    Sampler& sampler = samplers.try_emplace(i, r.sampling, vocab).first->second;
    sampler.add_prompt(r.prompt);
    HEARTH_RETURN_IF_ERROR(sched.add(std::move(seq)).with_context(fmt::format("request {}", i)));
  }
  GenerateStats local;
  GenerateStats& st = stats ? *stats : local;
  std::vector<float> logits;
  std::vector<DeviceToken> device_tokens;
  while (!sched.idle()) {
    SchedulerStep step = sched.schedule();
    if (step.chunks.empty()) {
      return make_error(ErrorCode::kInternal, "the scheduler made no progress ({} waiting, {} running)",
                        sched.num_waiting(), sched.num_running());
    }
    ForwardBatch batch = to_forward_batch(step);
    if (runner.device() == RunnerDevice::kCuda && options.device_sampling) {
      for (size_t i = 0; i < batch.chunks.size(); ++i) {
        SequenceChunk& chunk = batch.chunks[i];
        Sampler& sampler = samplers.at(step.chunks[i].seq->id);
        chunk.device_sample = chunk.want_logits && sampler.device_samplable();
        if (chunk.device_sample) chunk.sampling = sampler.device_sampling();
      }
    }
    bool has_prefill = false;
    for (const ScheduledChunk& c : step.chunks) {
      if (c.start < c.seq->prompt_len) {
        has_prefill = true;
        st.prefill_tokens += c.tokens;
      } else {
        st.decode_tokens += c.tokens;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    HEARTH_RETURN_IF_ERROR(runner.forward(batch, logits, &device_tokens));
    sched.on_computed(step);
    int64_t row = 0;
    for (size_t i = 0; i < step.chunks.size(); ++i) {
      const ScheduledChunk& c = step.chunks[i];
      if (!c.want_logits) continue;
      const std::span<const float> lrow(logits.data() + row * vocab, static_cast<size_t>(vocab));
      Sequence& seq = *c.seq;
      Sampler& sampler = samplers.at(seq.id);
      SampledToken tok = batch.chunks[i].device_sample && !device_tokens.empty()
                             ? sampler.accept(device_tokens[static_cast<size_t>(row)])
                             : sampler.sample(lrow);
      ++row;
      if (options.on_token) options.on_token(static_cast<size_t>(seq.id), tok);
      GenerateResult& out = results[seq.id];
      out.ids.push_back(tok.id);
      out.steps.push_back(std::move(tok));
      sched.on_token(seq, out.ids.back());
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (has_prefill ? st.prefill_seconds : st.decode_seconds) += dt;
    ++st.steps;
    st.preemptions += static_cast<int64_t>(step.preempted.size());
    for (auto& done : sched.take_finished()) {
      GenerateResult& out = results[done->id];
      out.finish_reason = std::string(finish_reason_name(done->finish));
      out.cached_prompt_tokens = done->cached_prompt_tokens;
      out.preemptions = done->preemptions;
    }
  }
  return results;
}

}  // namespace hearth
