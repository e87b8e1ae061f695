#include "core/status.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error(ErrorCode::kInvalidArgument, "value {} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  HEARTH_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return v * 2;
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(Status, CarriesCodeMessageAndContext) {
  Status s = make_error(ErrorCode::kCorrupt, "tensor {} overlaps", "w");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorrupt);
  EXPECT_EQ(s.with_context("model.safetensors").message(), "model.safetensors: tensor w overlaps");
  EXPECT_EQ(s.to_string(), "corrupt: tensor w overlaps");
}

TEST(Result, PropagatesErrorsThroughAssignOrReturn) {
  auto ok = doubled(21);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, 42);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "value -1 is not positive");
}

}  // namespace
}  // namespace hearth
