#include "engine/block_manager.h"

#include <gtest/gtest.h>

#include <set>

namespace hearth {
namespace {

TEST(BlockManager, AllocatesDistinctBlocksAndTakesThemBack) {
  BlockManager bm(8);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(bm.allocate(3, a).is_ok());
  ASSERT_TRUE(bm.ensure_capacity(b, 33, 16).is_ok());  // 33 tokens -> 3 blocks
  EXPECT_EQ(b.size(), 3u);
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 6u);
  EXPECT_EQ(bm.num_free(), 2);
  EXPECT_EQ(bm.ref_count(a[0]), 1);
  bm.release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(bm.num_free(), 5);
  ASSERT_TRUE(bm.ensure_capacity(b, 48, 16).is_ok());  // still 3 blocks: nothing new
  EXPECT_EQ(b.size(), 3u);
}

TEST(BlockManager, ShortageChangesNothingAndSaysWhy) {
  BlockManager bm(4);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(3, t).is_ok());
  const Status st = bm.allocate(2, t);
  EXPECT_EQ(st.code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(st.message().find("2 blocks needed, 1 of 4 free"), std::string::npos) << st.message();
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(bm.num_free(), 1);
}

}  // namespace
}  // namespace hearth
