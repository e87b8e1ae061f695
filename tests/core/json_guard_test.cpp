#include "core/json_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth {
namespace {

TEST(JsonGuard, AcceptsOrdinaryDocuments) {
  EXPECT_TRUE(check_json_limits(R"({"a":[1,2,{"b":"[[[[{{{{"}]})", {}, "doc").is_ok());
}

TEST(JsonGuard, RejectsDeepNestingWithPosition) {
  std::string deep(100, '[');
  Status s = check_json_limits(deep, {.max_bytes = 1 << 20, .max_depth = 64}, "request body");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(s.message(), "request body: JSON nesting deeper than 64 levels at byte 64");
}

TEST(JsonGuard, EscapedQuotesDoNotEndStrings) {
  std::string s = R"({"k":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})";
  EXPECT_TRUE(check_json_limits(s, {.max_bytes = 1 << 20, .max_depth = 4}, "doc").is_ok());
}

TEST(JsonGuard, RejectsOversizedDocuments) {
  EXPECT_EQ(check_json_limits(std::string(11, ' '), {.max_bytes = 10, .max_depth = 4}, "doc").code(),
            ErrorCode::kOutOfRange);
}

}  // namespace
}  // namespace hearth
