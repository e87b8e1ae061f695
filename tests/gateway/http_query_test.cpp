// Query strings of the gateway's own endpoints: parameters found by exact name, decoding of %XX and '+',
// malformed escapes refused.
#include "gateway/http_query.h"

#include <gtest/gtest.h>

namespace hearth::gateway {
namespace {

TEST(HttpQuery, ParametersByExactName) {
  const char* t = "/v1/usage?start=2026-11-01&end=&tenant=acme%20bank&x";
  EXPECT_EQ(query_param(t, "start"), "2026-11-01");
  EXPECT_EQ(query_param(t, "end"), "");
  EXPECT_EQ(query_param(t, "tenant"), "acme%20bank");
  EXPECT_EQ(query_param(t, "ten"), "");  // not a prefix match
  EXPECT_EQ(query_param(t, "x"), "");
  EXPECT_EQ(query_param("/v1/usage", "start"), "");
}

TEST(HttpQuery, DecodingIsStrict) {
  std::string out;
  ASSERT_TRUE(url_decode("acme%20bank+east%2Fwest", out));
  EXPECT_EQ(out, "acme bank east/west");
  ASSERT_TRUE(url_decode("%4a%4A", out));
  EXPECT_EQ(out, "JJ");
  EXPECT_FALSE(url_decode("bad%2", out));
  EXPECT_FALSE(url_decode("bad%zz", out));
  EXPECT_FALSE(url_decode("%", out));
}

}  // namespace
}  // namespace hearth::gateway
