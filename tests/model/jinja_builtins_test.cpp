// Builtin filters, tests, string/dict/list methods and global functions, each checked against
// what Jinja 3 (with transformers' tojson) renders.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace hearth {
namespace {

using Json = nlohmann::ordered_json;
using testing::render;
using testing::starts_with;

TEST(JinjaFilters, StringCase) {
  EXPECT_EQ(render("{{ 'hEllo'|upper }} {{ 'HeLLo'|lower }} {{ 'hELLO wORLD'|capitalize }}"),
            "HELLO hello Hello world");
  // Jinja's title splits words at spaces and - ( { [ <; str.title() at any non-letter.
  EXPECT_EQ(render("{{ \"they're bill's-x\"|title }} {{ \"they're bill's-x\".title() }}"),
            "They're Bill's-X They'Re Bill'S-X");
  // Python's full case mappings.
  EXPECT_EQ(render("{{ 'straße'|upper }} {{ 'ﬁne'|upper }} {{ 'ÉCOLE'|lower }}"), "STRASSE FINE école");
}

TEST(JinjaFilters, TrimReplaceJoinLength) {
  EXPECT_EQ(render("[{{ '  a b \n'|trim }}] [{{ 'xxhixx'|trim('x') }}]"), "[a b] [hi]");
  EXPECT_EQ(render("{{ 'hello'|replace('l', 'L') }} {{ 'hello'|replace('l', 'L', 1) }}"), "heLLo heLlo");
  EXPECT_EQ(render("{{ [1, 2, 3]|join('-') }} {{ ['a', 'b']|join }} {{ [{'n': 'x'}, {'n': 'y'}]|join(',', "
                   "attribute='n') }}"),
            "1-2-3 ab x,y");
  EXPECT_EQ(render("{{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ missing|length }}"),
            "5 2 1 0");
}

TEST(JinjaFilters, DefaultOnlyReplacesUndefinedUnlessBoolean) {
  EXPECT_EQ(
      render("{{ missing|default('d') }} {{ none|default('d') }} {{ ''|default('d', true) }} {{ 0|d(5) }}"),
      "d None d 0");
}

TEST(JinjaFilters, FirstLastListReverseItems) {
  EXPECT_EQ(render("{{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ 'abc'|first }} [{{ []|first }}]"),
            "1 3 a []");
  EXPECT_EQ(render("{{ 'ab'|list }} {{ {'k': 1}|list }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }}"),
            "['a', 'b'] ['k'] [2, 1] cba");
  EXPECT_EQ(render("{{ {'a': 1, 'b': 2}|items|list }} {{ missing|items|list }}"), "[('a', 1), ('b', 2)] []");
}

TEST(JinjaFilters, NumberConversions) {
  EXPECT_EQ(render("{{ '42'|int }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 2.9|int }} {{ "
                   "'0x1A'|int(base=16) }}"),
            "42 3 0 7 2 26");
  EXPECT_EQ(render("{{ '1.5'|float }} {{ 'x'|float }} {{ 3|float }} {{ -5|abs }} {{ -2.5|abs }}"),
            "1.5 0.0 3.0 5 2.5");
  EXPECT_EQ(
      render(
          "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 42.55|round(1, 'floor') }} {{ 5|round }}"),
      "2.0 4.0 2.67 42.5 5");
}

TEST(JinjaFilters, SortUniqueDictsortMinMaxSum) {
  EXPECT_EQ(render("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ [3, 1, 2]|sort(reverse=true) }}"),
            "[1, 2, 3] ['A', 'a', 'b'] [3, 2, 1]");
  EXPECT_EQ(render("{{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}"), "[{'n': 1}, {'n': 2}]");
  EXPECT_EQ(render("{{ ['b', 'A', 'a', 'b']|unique|list }} {{ {'b': 1, 'a': 2}|dictsort }}"),
            "['b', 'A'] [('a', 2), ('b', 1)]");
  EXPECT_EQ(render("{{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [1, 2.5]|sum }} {{ [{'v': 2}, {'v': "
                   "3}]|sum(attribute='v') }}"),
            "3 1 3.5 5");
  EXPECT_EQ(render("{{ [1, 'a']|sort }}"),
            "ERROR: chat template: 1:13: ordering is not supported between instances of 'str' and 'int'");
}

TEST(JinjaFilters, SelectRejectMap) {
  const Json vars = {{"ms",
                      {{{"role", "system"}, {"content", "s"}},
                       {{"role", "user"}, {"content", "u"}},
                       {{"role", "assistant"}}}}};
  EXPECT_EQ(render("{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}", vars),
            "['u']");
  EXPECT_EQ(render("{{ ms|rejectattr('content')|map(attribute='role')|list }}", vars), "['assistant']");
  EXPECT_EQ(render("{{ ms|map(attribute='content', default='-')|join }}", vars), "su-");
  EXPECT_EQ(render("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('gt', 1)|list }} {{ [0, "
                   "1]|select|list }}"),
            "[1, 3] [1] [1]");
  EXPECT_EQ(render("{{ ['a', 'b']|map('upper')|list }} {{ [1, 2]|map('string')|join(',') }}"),
            "['A', 'B'] 1,2");
}

TEST(JinjaFilters, TojsonIsPythonJsonDumpsWithoutAsciiEscaping) {
  EXPECT_EQ(render("{{ {'a': 'é', 'b': [1, 2.0, none, true], 'c': {}} | tojson }}"),
            R"({"a": "é", "b": [1, 2.0, null, true], "c": {}})");
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1, 2]}|tojson(indent=2) }}"),
            "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(render(R"({{ "q\"\\\n\t\u0001<>&'"|tojson }})"), R"("q\"\\\n\t\u0001<>&'")");
  EXPECT_EQ(render("{{ 'é😀'|tojson(ensure_ascii=true) }}"), R"("\u00e9\ud83d\ude00")");
  EXPECT_EQ(render("{{ {'b': 1, 'a': [1, 2]}|tojson(separators=(',', ':'), sort_keys=true) }}"),
            R"({"a":[1,2],"b":1})");
  // As in Python, True and 1 are the same dict key.
  EXPECT_EQ(render("{{ {1: 'x', none: 2, true: 3}|tojson }}"), R"({"1": 3, "null": 2})");
  // Key order is the order of the input JSON (Python dicts keep insertion order).
  EXPECT_EQ(render("{{ tool|tojson }}", Json{{"tool", {{"z", 1}, {"a", 2}}}}), R"({"z": 1, "a": 2})");
  EXPECT_EQ(render("{{ missing|tojson }}"),
            "ERROR: chat template: 1:12: Object of type Undefined is not JSON serializable");
}

TEST(JinjaFilters, IndentWordcountEscapeCenter) {
  EXPECT_EQ(
      render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}"),
      "a\n  b\n\n  c|  a\n  b|a\n  \n  b");
  EXPECT_EQ(render("{{ 'x\ny'|indent('> ') }}"), "x\n> y");
  EXPECT_EQ(render("{{ 'hello world, foo_bar!'|wordcount }} {{ '<a href=\"x\">&\\'</a>'|escape }}"),
            "3 &lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(render("[{{ 'ab'|center(6) }}] {{ 1|safe }} {{ [1]|string }} {{ '%s-%s'|format(1, 'a') }}"),
            "[  ab  ] 1 [1] 1-a");
}

TEST(JinjaTests, TypeAndValueTests) {
  EXPECT_EQ(render("{{ 1 is integer }} {{ true is integer }} {{ true is number }} {{ 1.0 is float }} {{ 's' "
                   "is string }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ {} is mapping }} {{ [] is sequence }} {{ 'x' is iterable }} {{ 3 is iterable }} {{ "
                   "range is callable }}"),
            "True True True False True");
  EXPECT_EQ(render("{{ none is none }} {{ false is false }} {{ false is true }} {{ true is boolean }} {{ 0 "
                   "is boolean }}"),
            "True True False True False");
  EXPECT_EQ(
      render(
          "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'ab' is lower }} {{ 'AB' is upper }}"),
      "True True True True True");
  EXPECT_EQ(render("{{ 2 is equalto 2 }} {{ 2 is eq 3 }} {{ 2 is ne 3 }} {{ 3 is gt 2 }} {{ 3 is lessthan 2 "
                   "}} {{ 2 is in [1, 2] }}"),
            "True False True True False True");
  EXPECT_EQ(
      render("{{ x is not defined }} {{ x is undefined }} {{ none is not none }} {{ 'upper' is filter }}"),
      "True True False True");
}

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(
      render(
          "{{ ' x '.strip() }}|{{ 'xhix'.strip('x') }}|{{ '\nab\n'.lstrip('\n') }}|{{ 'ab\n\n'.rstrip() }}"),
      "x|hi|ab\n|ab");
  EXPECT_EQ(render("{{ ' a  b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a b "
                   "c'.rsplit(' ', 1) }}"),
            "['a', 'b'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a b', 'c']");
  EXPECT_EQ(render("{{ '<think>x</think>y'.split('</think>')[-1] }} {{ 'a\nb\r\nc'.splitlines() }}"),
            "y ['a', 'b', 'c']");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ "
                   "'hello'.startswith('l', 2) }}"),
            "True True True");
  EXPECT_EQ(render("{{ 'héllo'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ "
                   "'hello'.count('l') }}"),
            "2 3 -1 2");
  EXPECT_EQ(render("{{ 'a-b'.replace('-', '+') }} {{ ','.join(['a', 'b']) }} {{ 'Ab'.swapcase() }} {{ "
                   "'ab'.upper() }}"),
            "a+b a,b aB AB");
  EXPECT_EQ(render("{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ ''.isdigit() }} {{ "
                   "'ab'.islower() }}"),
            "True True True False True");
  EXPECT_EQ(render("{{ 'x.py'.removesuffix('.py') }} {{ 'a=b'.partition('=') }} {{ '{} and {name}'.format(1, "
                   "name='n') }}"),
            "x ('a', '=', 'b') 1 and n");
}

TEST(JinjaMethods, DictAndListMethods) {
  const Json vars = {{"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(render("{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ "
                   "d.get('z', 0) }} {{ d.get('z') }}",
                   vars),
            "[('b', 1), ('a', 2)] ['b', 'a'] [1, 2] 2 0 None");
  EXPECT_EQ(render("{{ [1, 2, 2].index(2) }} {{ [1, 2, 2].count(2) }}"), "1 2");
}

TEST(JinjaMethods, MutatingMethodsAreRefusedAsInTheSandbox) {
  EXPECT_EQ(
      render("{{ [1].append(2) }}"),
      "ERROR: chat template: 1:7: access to attribute 'append' of 'list' object is unsafe (templates cannot "
      "modify values)");
  EXPECT_EQ(render("{{ {}.update is defined }}"), "False");
}

TEST(JinjaGlobals, RangeDictNamespace) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }}"),
            "[0, 1, 2] [1, 4, 7] [5, 3, 1]");
  EXPECT_EQ(render("{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}"), "{'a': 1, 'b': 'x'} 1");
  EXPECT_EQ(render("{{ range(0, 10, 0) }}"), "ERROR: chat template: 1:4: range() arg 3 must not be zero");
}

TEST(JinjaGlobals, StrftimeNowFormatsTheCurrentTime) {
  const std::string year = render("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y')|length }}"), "11");
}

}  // namespace
}  // namespace hearth
