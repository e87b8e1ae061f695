#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace hearth {
namespace {

struct Call {
  int64_t begin;
  int64_t end;
  std::thread::id thread;
};

// Runs one parallel_for and returns its calls sorted by range.
std::vector<Call> record(ThreadPool& pool, int64_t n, int64_t grain) {
  std::mutex mu;
  std::vector<Call> calls;
  pool.parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        std::lock_guard<std::mutex> lock(mu);
        calls.push_back({b, e, std::this_thread::get_id()});
      },
      grain);
  std::sort(calls.begin(), calls.end(), [](const Call& a, const Call& b) { return a.begin < b.begin; });
  return calls;
}

TEST(ThreadPool, SizeCountsTheCallingThread) {
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(2).size(), 2);
  EXPECT_EQ(ThreadPool(5).size(), 5);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(ThreadPool(0).size(), hw);
  EXPECT_EQ(ThreadPool(-3).size(), hw);
}

TEST(ThreadPool, ParallelForCoversTheRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      for (int64_t grain : {0, 1, 3, 64, 5000}) {
        SCOPED_TRACE("threads " + std::to_string(threads) + " n " + std::to_string(n) + " grain " +
                     std::to_string(grain));
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> calls{0};
        pool.parallel_for(
            n,
            [&](int64_t b, int64_t e) {
              ++calls;
              for (int64_t i = b; i < e; ++i) ++hits[i];
            },
            grain);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
        // At most one range per thread, and no more ranges than grains fit.
        const int64_t g = std::max<int64_t>(grain, 1);
        EXPECT_LE(calls.load(), std::min<int64_t>(threads, (n + g - 1) / g));
        EXPECT_EQ(calls.load() > 0, n > 0);
      }
    }
  }
}

TEST(ThreadPool, RangesAreContiguousBalancedAndRepeatable) {
  ThreadPool pool(3);
  for (int64_t n : {2, 7, 1000}) {
    SCOPED_TRACE("n " + std::to_string(n));
    const std::vector<Call> calls = record(pool, n, 1);
    ASSERT_EQ(calls.size(), static_cast<size_t>(std::min<int64_t>(3, n)));
    int64_t next = 0, smallest = n, largest = 0;
    for (const Call& c : calls) {
      EXPECT_EQ(c.begin, next);
      EXPECT_LT(c.begin, c.end);
      next = c.end;
      smallest = std::min(smallest, c.end - c.begin);
      largest = std::max(largest, c.end - c.begin);
    }
    EXPECT_EQ(next, n);
    EXPECT_LE(largest - smallest, 1);
    // The split is a function of (n, size()) only: the same ranges every time.
    for (int rep = 0; rep < 20; ++rep) {
      const std::vector<Call> again = record(pool, n, 1);
      ASSERT_EQ(again.size(), calls.size());
      for (size_t i = 0; i < calls.size(); ++i) {
        EXPECT_EQ(again[i].begin, calls[i].begin);
        EXPECT_EQ(again[i].end, calls[i].end);
      }
    }
  }
}

TEST(ThreadPool, CallerRunsOneRangeAndWorkersTheOthers) {
  ThreadPool pool(3);
  const std::vector<Call> calls = record(pool, 3000, 1);
  ASSERT_EQ(calls.size(), 3u);
  const auto caller = std::this_thread::get_id();
  EXPECT_EQ(std::count_if(calls.begin(), calls.end(), [&](const Call& c) { return c.thread == caller; }), 1);
  EXPECT_NE(calls[0].thread, calls[1].thread);
  EXPECT_NE(calls[1].thread, calls[2].thread);
  EXPECT_NE(calls[0].thread, calls[2].thread);

  ThreadPool single(1);
  for (const Call& c : record(single, 100, 1)) EXPECT_EQ(c.thread, caller);
}

TEST(ThreadPool, ManySmallJobsInARowNeitherDeadlockNorLoseWork) {
  // Back-to-back jobs stress the generation handshake: a worker that is late for one job must
  // neither miss the next one nor run a job twice.
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  int64_t expected = 0;
  for (int job = 0; job < 10000; ++job) {
    const int64_t n = 1 + job % 5;
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) total += i + 1;
    });
    expected += n * (n + 1) / 2;
  }
  EXPECT_EQ(total.load(), expected);
}

TEST(ThreadPool, EveryJobSeesItsOwnFunction) {
  // Each job writes its own index; a worker running a stale job would write the wrong one.
  ThreadPool pool(4);
  std::vector<int> out(8);
  for (int job = 0; job < 2000; ++job) {
    pool.parallel_for(8, [&, job](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = job;
    });
    for (int v : out) ASSERT_EQ(v, job);
  }
}

}  // namespace
}  // namespace hearth
