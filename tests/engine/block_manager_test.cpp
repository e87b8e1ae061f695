#include "engine/block_manager.h"

#include <gtest/gtest.h>

#include <set>

namespace hearth {
namespace {

TEST(BlockManager, AllocatesDistinctBlocksAndTakesThemBack) {
  BlockManager bm(8, 16);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(bm.allocate(3, a).is_ok());
  ASSERT_TRUE(bm.ensure_capacity(b, 33).is_ok());  // 33 tokens -> 3 blocks
  EXPECT_EQ(b.size(), 3u);
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 6u);
  EXPECT_EQ(bm.num_free(), 2);
  EXPECT_EQ(bm.ref_count(a[0]), 1);
  bm.release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(bm.num_free(), 5);
  ASSERT_TRUE(bm.ensure_capacity(b, 48).is_ok());  // still 3 blocks: nothing new
  EXPECT_EQ(b.size(), 3u);
}

TEST(BlockManager, ShortageChangesNothingAndSaysWhy) {
  BlockManager bm(4, 16);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(3, t).is_ok());
  const Status st = bm.allocate(2, t);
  EXPECT_EQ(st.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(st.message().find("2 blocks needed, 1 of 4 free"), std::string::npos) << st.message();
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(bm.num_free(), 1);
}

TEST(BlockManager, PrefixCacheSharesFullBlocksOfTheSameTenantOnly) {
  BlockManager bm(8, 4);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<int32_t> a;
  ASSERT_TRUE(bm.ensure_capacity(a, 10).is_ok());  // 3 blocks
  PrefixChain ca;
  bm.commit(a, prompt, 10, "tenant-1", ca);  // blocks 0, 1 full; the third holds 2 tokens
  PrefixMatch m = bm.match_prefix(prompt, "tenant-1", 9);
  EXPECT_EQ(m.tokens, 8);
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.blocks[0], a[0]);
  EXPECT_EQ(bm.ref_count(a[0]), 2);
  PrefixMatch other = bm.match_prefix(prompt, "tenant-2", 9);
  EXPECT_EQ(other.tokens, 0) << "another tenant's salt never hits";
  std::vector<int32_t> diverging = prompt;
  diverging[5] = 99;  // second block differs
  PrefixMatch partial = bm.match_prefix(diverging, "tenant-1", 9);
  EXPECT_EQ(partial.tokens, 4);
  PrefixMatch capped = bm.match_prefix(prompt, "tenant-1", 7);
  EXPECT_EQ(capped.tokens, 4) << "max_tokens caps the match";
  bm.release(m.blocks);
  bm.release(partial.blocks);
  bm.release(capped.blocks);
  EXPECT_EQ(bm.stats().hits, 8u + 4u + 4u);
  EXPECT_EQ(bm.ref_count(a[0]), 1) << "only the owner holds it again";
}

TEST(BlockManager, ReleasedCachedBlocksStayReusableUntilEvictedLeastRecentlyUsedFirst) {
  BlockManager bm(4, 2);
  std::vector<int32_t> a, b;
  const std::vector<int32_t> pa = {1, 2, 3, 4}, pb = {5, 6, 7, 8};
  ASSERT_TRUE(bm.ensure_capacity(a, 4).is_ok());
  PrefixChain ca, cb;
  bm.commit(a, pa, 4, "", ca);
  ASSERT_TRUE(bm.ensure_capacity(b, 4).is_ok());
  bm.commit(b, pb, 4, "", cb);
  bm.release(a);  // a's blocks become evictable, still cached
  bm.release(b);
  EXPECT_EQ(bm.num_free(), 4);
  PrefixMatch hit = bm.match_prefix(pa, "", 4);
  EXPECT_EQ(hit.tokens, 4) << "cached after release";
  bm.release(hit.blocks);  // a is now the most recently used
  std::vector<int32_t> c;
  ASSERT_TRUE(bm.allocate(2, c).is_ok());  // evicts b's blocks (least recently used), not a's
  EXPECT_EQ(bm.stats().evictions, 2u);
  EXPECT_EQ(bm.match_prefix(pb, "", 4).tokens, 0);
  PrefixMatch still = bm.match_prefix(pa, "", 4);
  EXPECT_EQ(still.tokens, 4);
  bm.release(still.blocks);
  bm.release(c);
  EXPECT_EQ(bm.num_free(), 4);
}

}  // namespace
}  // namespace hearth
