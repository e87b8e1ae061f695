// Template syntax: text, comments, whitespace control, transformers' environment settings
// (trim_blocks, lstrip_blocks, no trailing newline), literals, and syntax errors with positions.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace hearth {
namespace {

using testing::render;
using testing::starts_with;

TEST(JinjaSyntax, TextWithoutTagsIsCopiedExceptOneTrailingNewline) {
  EXPECT_EQ(render("plain text"), "plain text");
  EXPECT_EQ(render("line\n"), "line");
  EXPECT_EQ(render("line\n\n"), "line\n");
  EXPECT_EQ(render(""), "");
}

TEST(JinjaSyntax, NewlinesAreNormalisedToLineFeeds) {
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaSyntax, CommentsRenderNothing) {
  EXPECT_EQ(render("a{# a comment {{ x }} #}b"), "ab");
  EXPECT_EQ(render("{# multi\nline #}x"), "x");
}

TEST(JinjaSyntax, MinusStripsAllWhitespaceOnThatSide) {
  EXPECT_EQ(render("a  \n {{- 'b' -}} \n c"), "abc");
  EXPECT_EQ(render("a \n{%- if true -%}\n b {%- endif %}"), "ab");
  EXPECT_EQ(render("a {#- c -#} b"), "ab");
}

TEST(JinjaSyntax, TrimBlocksRemovesTheNewlineAfterABlockTag) {
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny"), "x\ny");
  EXPECT_EQ(render("{# c #}\nx"), "x");
  // Only one newline, and not after {{ }}.
  EXPECT_EQ(render("{% if true %}\n\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("{{ 'a' }}\nb"), "a\nb");
}

TEST(JinjaSyntax, LstripBlocksRemovesIndentationBeforeABlockTag) {
  EXPECT_EQ(render("a\n    {% if true %}\n    b\n    {% endif %}\nc"), "a\n    b\nc");
  // Not when text precedes the tag on its line, and never before {{ }}.
  EXPECT_EQ(render("x  {% if true %}y{% endif %}"), "x  y");
  EXPECT_EQ(render("  {{ 'v' }}"), "  v");
}

TEST(JinjaSyntax, PlusDisablesLstripAndTrim) {
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(JinjaSyntax, RawBlocksAreNotInterpreted) {
  EXPECT_EQ(render("{% raw %}{{ x }} {% if %}{% endraw %}"), "{{ x }} {% if %}");
}

TEST(JinjaSyntax, GenerationBlockRendersItsBody) {
  EXPECT_EQ(render("{% generation %}answer{% endgeneration %}"), "answer");
}

TEST(JinjaSyntax, Literals) {
  EXPECT_EQ(render("{{ 42 }} {{ -7 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }}"), "42 -7 1000 31 15 5");
  EXPECT_EQ(render("{{ 1.5 }} {{ 2e3 }} {{ 1.5e-7 }} {{ 1.0 }}"), "1.5 2000.0 1.5e-07 1.0");
  EXPECT_EQ(render("{{ true }} {{ False }} {{ none }} {{ None }}"), "True False None None");
  EXPECT_EQ(render("{{ 'single' }} {{ \"double\" }} {{ 'adjacent' ' strings' }}"),
            "single double adjacent strings");
  EXPECT_EQ(render("{{ [1, 'a', none] }} {{ (1,) }} {{ () }} {{ {'k': [1, 2]} }}"),
            "[1, 'a', None] (1,) () {'k': [1, 2]}");
}

TEST(JinjaSyntax, StringEscapesFollowPython) {
  EXPECT_EQ(render(R"({{ 'a\nb\tc\\d\'e' }})"), "a\nb\tc\\d'e");
  EXPECT_EQ(render(R"({{ '\x41\u00e9\U0001F600\101' }})"), "A\u00e9\U0001F600A");
  EXPECT_EQ(render(R"({{ '\q' }})"), "\\q");  // unknown escapes stay as written
}

TEST(JinjaSyntax, DictLiteralClosingBracesAreNotTheTagEnd) {
  EXPECT_EQ(render("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");
}

TEST(JinjaSyntax, ErrorsNameLineAndColumn) {
  EXPECT_EQ(render("ok\n{{ 1 + }}"), "ERROR: chat template: 2:8: unexpected '}}'");
  EXPECT_EQ(render("{% if x %}no end"),
            "ERROR: chat template: 1:17: unexpected end of template: expected 'elif'");
  EXPECT_EQ(render("{{ 'unterminated }}"), "ERROR: chat template: 1:4: unterminated string literal");
  EXPECT_EQ(
      render("{% frobnicate %}"),
      "ERROR: chat template: 1:4: unknown tag 'frobnicate' (supported: for, if, set, macro, call, filter, "
      "break, continue, generation, raw)");
  EXPECT_EQ(render("{{ x | nosuchfilter }}"), "ERROR: chat template: 1:8: no filter named 'nosuchfilter'");
  EXPECT_EQ(render("{{ x is nosuchtest }}"), "ERROR: chat template: 1:9: no test named 'nosuchtest'");
  EXPECT_EQ(render("{# open"), "ERROR: chat template: 1:1: unterminated comment: missing '#}'");
  EXPECT_EQ(render("{% endfor %}"),
            "ERROR: chat template: 1:4: unexpected 'endfor': no open block expects it");
  EXPECT_EQ(render("{% break %}"), "ERROR: chat template: 1:4: 'break' outside of a for loop");
  EXPECT_EQ(render("{{ (1 }}"), "ERROR: chat template: 1:7: unexpected '}', expected ')'");
  EXPECT_EQ(render("{{ 1 ? 2 }}"), "ERROR: chat template: 1:6: unexpected character '?'");
}

TEST(JinjaSyntax, InvalidUtf8IsRejected) {
  EXPECT_TRUE(starts_with(render("ok \xff"), "ERROR: chat template: template is not valid UTF-8"));
}

TEST(JinjaSyntax, RecursiveLoopsAreRefusedClearly) {
  EXPECT_TRUE(
      starts_with(render("{% for x in y recursive %}{% endfor %}"), "ERROR: chat template: 1:15: recursive"));
}

}  // namespace
}  // namespace hearth
