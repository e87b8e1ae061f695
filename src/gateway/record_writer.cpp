#include "gateway/record_writer.h"

#include <chrono>
#include <vector>

#include "core/log.h"

namespace hearth::gateway {

RecordWriter::RecordWriter(store::Store& store, RecordWriterConfig config)
    : store_(store), config_(config), thread_([this] { loop(); }) {}

RecordWriter::~RecordWriter() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RecordWriter::usage(store::UsageRecord record, std::function<void(const Status&)> done) {
  {
    std::lock_guard lk(mu_);
    usage_.emplace_back(std::move(record), std::move(done));
  }
  wake_.notify_one();
}

void RecordWriter::audit(store::AuditEntry entry) {
  {
    std::lock_guard lk(mu_);
    audit_.push_back(std::move(entry));
  }
  wake_.notify_one();
}

RecordWriterStats RecordWriter::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void RecordWriter::loop() {
  std::vector<store::UsageRecord> usage;
  std::vector<std::function<void(const Status&)>> done;
  std::vector<store::AuditEntry> audit;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      wake_.wait(lk, [&] { return stop_ || !usage_.empty() || !audit_.empty(); });
      if (usage_.empty() && audit_.empty()) return;  // stopping, nothing left
      // Let companions arrive (group commit), unless the batch is full or we are stopping.
      if (config_.max_delay_us > 0 && !stop_ &&
          usage_.size() + audit_.size() < static_cast<size_t>(config_.max_batch)) {
        wake_.wait_for(lk, std::chrono::microseconds(config_.max_delay_us), [&] {
          return stop_ || usage_.size() + audit_.size() >= static_cast<size_t>(config_.max_batch);
        });
      }
      const size_t nu = std::min(usage_.size(), static_cast<size_t>(config_.max_batch));
      for (size_t i = 0; i < nu; ++i) {
        usage.push_back(std::move(usage_.front().first));
        done.push_back(std::move(usage_.front().second));
        usage_.pop_front();
      }
      const size_t na = std::min(audit_.size(), static_cast<size_t>(config_.max_batch));
      for (size_t i = 0; i < na; ++i) {
        audit.push_back(std::move(audit_.front()));
        audit_.pop_front();
      }
    }
    Status au = store_.audit_batch(audit);
    Status us = store_.record_usage(usage);
    if (!au.is_ok())
      HEARTH_LOG_ERROR("gateway: {} audit records not written: {}", audit.size(), au.to_string());
    if (!us.is_ok())
      HEARTH_LOG_ERROR("gateway: {} usage records not written: {}", usage.size(), us.to_string());
    for (auto& d : done)
      if (d) d(us);
    {
      std::lock_guard lk(mu_);
      stats_.batches += 1;
      if (au.is_ok()) stats_.audit_written += audit.size();
      if (us.is_ok()) stats_.usage_written += usage.size();
      stats_.failures += (au.is_ok() ? 0 : 1) + (us.is_ok() ? 0 : 1);
    }
    usage.clear();
    done.clear();
    audit.clear();
  }
}

}  // namespace hearth::gateway
