#pragma once
// RecordWriter: the gateway's group commit. Usage records and audit entries from every request are queued
// and written by one thread in batches — one transaction (one fsync) per batch instead of one per request —
// so metering and auditing every auth decision cost ~one fsync per batch interval, not per request.
// A usage record's callback runs once its batch is durable (or failed): the gateway finishes the client's
// response only then, so an acknowledged request's record survives a crash of the gateway.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/status.h"
#include "store/store.h"

namespace hearth::gateway {

struct RecordWriterConfig {
  int max_batch = 512;
  int max_delay_us =
      0;  // > 0: a record waits up to this long for companions (0: what queued during the last write)
};

struct RecordWriterStats {
  uint64_t usage_written = 0, audit_written = 0, batches = 0, failures = 0;
};

class RecordWriter {
 public:
  RecordWriter(store::Store& store, RecordWriterConfig config);
  ~RecordWriter();  // writes what is queued, then stops
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // done(status) runs on the writer's thread once the record is durable (ok) or could not be written.
  void usage(store::UsageRecord record, std::function<void(const Status&)> done = {});
  void audit(store::AuditEntry entry);
  RecordWriterStats stats() const;

 private:
  void loop();

  store::Store& store_;
  RecordWriterConfig config_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::pair<store::UsageRecord, std::function<void(const Status&)>>> usage_;
  std::deque<store::AuditEntry> audit_;
  RecordWriterStats stats_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hearth::gateway
