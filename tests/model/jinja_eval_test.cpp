// Evaluation rules: Python operators and truthiness, undefined values, attribute/item access,
// slicing, statements (if, for with loop variables and filters, set, namespace, macro, call,
// filter blocks, break/continue) and Jinja's scoping.
#include <gtest/gtest.h>

#include "jinja_test_util.h"

namespace hearth {
namespace {

using Json = nlohmann::ordered_json;
using testing::render;

TEST(JinjaEval, ArithmeticFollowsPython) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 2 -2 1024 0.5");
  EXPECT_EQ(render("{{ 10 / 2 }} {{ 1 / 3 }} {{ 0.1 + 0.2 }} {{ 1 + 1.5 }} {{ true + 1 }}"),
            "5.0 0.3333333333333333 0.30000000000000004 2.5 2");
  EXPECT_EQ(render("{{ -7.5 // 2 }} {{ 10 % 3.5 }} {{ -(3) }} {{ +4 }}"), "-4.0 3.0 -3 4");
  EXPECT_EQ(render("{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 2 * [0] }} {{ 'x' * -1 }}"),
            "abcd ababab [1, 2] [0, 0] ");
  EXPECT_EQ(render("{{ '%s=%d' % ('a', 3) }} {{ '%05.1f' % 3.14159 }}"), "a=3 003.1");
}

TEST(JinjaEval, FloatsPrintLikePythonRepr) {
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ -0.0 }} {{ 1e300 * 1e10 }} {{ 100.0 }}"),
            "1e+16 1000000000000000.0 1e-05 0.0001 -0.0 inf 100.0");
}

TEST(JinjaEval, ArithmeticErrorsAreReported) {
  EXPECT_EQ(render("{{ 1 / 0 }}"), "ERROR: chat template: 1:6: division by zero");
  EXPECT_EQ(render("{{ 'a' + 1 }}"),
            "ERROR: chat template: 1:8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render("{{ 1 < 'a' }}"),
            "ERROR: chat template: 1:4: ordering is not supported between instances of 'int' and 'str'");
  EXPECT_EQ(render("{{ 9223372036854775807 + 1 }}"),
            "ERROR: chat template: 1:24: integer overflow (template integers are 64-bit)");
}

TEST(JinjaEval, ComparisonsAndMembership) {
  EXPECT_EQ(
      render(
          "{{ 1 == 1.0 }} {{ (1, 2) == [1, 2] }} {{ [1, 2] < [1, 3] }} {{ 'abc' < 'abd' }} {{ 1 < 2 < 3 }}"),
      "True False True True True");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in "
                   "nothing }}"),
            "True True True True False");
  EXPECT_EQ(render("{{ 'x' in content }}", Json{{"content", nullptr}}),
            "ERROR: chat template: 1:4: argument of type 'NoneType' is not iterable");
}

TEST(JinjaEval, LogicReturnsOperandsAndShortCircuits) {
  EXPECT_EQ(render("{{ none or 'x' }} {{ 0 and 1 }} {{ 'a' and 'b' }} {{ not [] }}"), "x 0 b True");
  EXPECT_EQ(render("{{ false and undefined_thing.attr }}"), "False");
}

TEST(JinjaEval, InlineIfWithoutElseIsUndefined) {
  EXPECT_EQ(render("[{{ 'a' if false }}] [{{ 'a' if true else 'b' }}]"), "[] [a]");
}

TEST(JinjaEval, UndefinedPrintsEmptyAndIsFalsy) {
  EXPECT_EQ(
      render("[{{ missing }}] {{ missing is defined }} {{ 'yes' if not missing }} [{{ missing ~ 'x' }}]"),
      "[] False yes [x]");
  EXPECT_EQ(render("{% for x in missing %}never{% endfor %}{{ missing|length }}"), "0");
}

TEST(JinjaEval, UsingUndefinedAsAValueFails) {
  EXPECT_EQ(render("{{ missing.attr }}"), "ERROR: chat template: 1:11: 'missing' is undefined");
  EXPECT_EQ(render("{{ missing['k'] }}"), "ERROR: chat template: 1:11: 'missing' is undefined");
  EXPECT_EQ(render("{{ missing + 1 }}"), "ERROR: chat template: 1:12: 'missing' is undefined");
  EXPECT_EQ(render("{{ missing() }}"), "ERROR: chat template: 1:4: 'missing' is undefined");
}

TEST(JinjaEval, AttributeAndItemAccess) {
  const Json vars = {{"m", {{"role", "user"}, {"items", "key"}}}, {"l", {10, 20, 30}}};
  EXPECT_EQ(
      render("{{ m.role }} {{ m['role'] }} {{ l[0] }} {{ l[-1] }} {{ l.1 }} [{{ l[9] }}] [{{ m.nope }}]",
             vars),
      "user user 10 30 20 [] []");
  // An attribute names the dict method first; a subscript names the key first.
  EXPECT_EQ(render("{{ m['items'] }} {{ m.items is callable }}", vars), "key True");
  EXPECT_EQ(render("{{ none.attr is defined }}"), "False");
}

TEST(JinjaEval, SlicesFollowPython) {
  EXPECT_EQ(render("{{ 'héllo'[::-1] }} {{ [1, 2, 3, 4][1:-1] }} {{ 'abcdef'[::2] }} {{ [1, 2, 3][5:] }} {{ "
                   "'héllo'[1] }}"),
            "olléh [2, 3] ace [] é");
  EXPECT_EQ(render("{{ 'ab'[::0] }}"), "ERROR: chat template: 1:8: slice step cannot be zero");
}

TEST(JinjaEval, IfElifElse) {
  const char* t = "{% if n > 1 %}many{% elif n == 1 %}one{% else %}none{% endif %}";
  EXPECT_EQ(render(t, Json{{"n", 5}}), "many");
  EXPECT_EQ(render(t, Json{{"n", 1}}), "one");
  EXPECT_EQ(render(t, Json{{"n", 0}}), "none");
}

TEST(JinjaEval, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }}"
                   "{{ loop.cycle('o', 'e') }} {% endfor %}"),
            "-2o 13e 2-o ");
}

TEST(JinjaEval, ForLoopFilterElseAndUnpacking) {
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"),
            "2/2 4/2 ");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for (a, b) in [(1, 2)] %}{{ a + b }}{% endfor %}"), "3");
  EXPECT_EQ(render("{% for c in 'hé' %}[{{ c }}]{% endfor %}{% for k in {'x': 1} %}{{ k }}{% endfor %}"),
            "[h][é]x");
  EXPECT_EQ(render("{% for a, b in [1] %}{% endfor %}"),
            "ERROR: chat template: 1:4: 'int' object is not iterable");
}

TEST(JinjaEval, BreakAndContinue) {
  EXPECT_EQ(
      render("{% for i in range(6) %}{% if i == 4 %}{% break %}{% endif %}{% if i is odd %}{% continue %}"
             "{% endif %}{{ i }}{% endfor %}"),
      "02");
}

TEST(JinjaEval, AssignmentsInsideLoopsDoNotLeak) {
  // Each iteration starts from the outer value; the outer value is unchanged afterwards.
  EXPECT_EQ(
      render("{% set c = 0 %}{% for i in range(3) %}{{ c }}{% set c = c + 1 %}{{ c }},{% endfor %}{{ c }}"),
      "01,01,01,0");
  // `if` has no scope of its own.
  EXPECT_EQ(render("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
}

TEST(JinjaEval, NamespacesCarryStateOutOfLoops) {
  EXPECT_EQ(render("{% set ns = namespace(n=0, seen=[]) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
                   "{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.n }} {{ ns.seen }}"),
            "3 [0, 1, 2]");
  EXPECT_EQ(render("{% set ns = namespace({'a': 1}) %}{{ ns.a }} {{ ns.b is defined }}"), "1 False");
  EXPECT_EQ(render("{% set v = 1 %}{% set v.x = 2 %}"),
            "ERROR: chat template: 1:19: cannot assign attribute 'x' on 'v': it is a int, not a namespace");
}

TEST(JinjaEval, SetForms) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set t = 1, 2 %}{{ t }}"), "(1, 2)");
  EXPECT_EQ(render("{%- set block -%}\n  hi {{ 1 }}\n{%- endset -%}[{{ block }}]"), "[hi 1]");
  EXPECT_EQ(render("{% set up | upper %}shout{% endset %}{{ up }}"), "SHOUT");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.text %}body{% endset %}{{ ns.text }}"), "body");
}

TEST(JinjaEval, MacrosWithDefaultsKeywordsAndCaller) {
  EXPECT_EQ(
      render("{% macro m(a, b=2) %}<{{ a }}|{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(b=5, a=0) }}"),
      "<1|2><1|3><0|5>");
  EXPECT_EQ(render("{% macro m() %}{{ varargs }} {{ kwargs }}{% endmacro %}{{ m(1, k=2) }}"),
            "(1,) {'k': 2}");
  EXPECT_EQ(render("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}"),
            "[inside]");
  EXPECT_EQ(
      render("{% macro w() %}{{ caller(1, 2) }}{% endmacro %}{% call(a, b) w() %}{{ a + b }}{% endcall %}"),
      "3");
  // Macros read template variables at call time.
  EXPECT_EQ(render("{% macro m() %}{{ later }}{% endmacro %}{% set later = 'set after' %}{{ m() }}"),
            "set after");
}

TEST(JinjaEval, FilterBlocks) {
  EXPECT_EQ(render("{% filter upper %}hello {{ 'you' }}{% endfilter %}"), "HELLO YOU");
  EXPECT_EQ(render("{% filter trim | upper %}  x  {% endfilter %}"), "X");
}

TEST(JinjaEval, ReprOfContainersFollowsPython) {
  EXPECT_EQ(render(R"({{ ["it's", 'a"b', 'a"\'b', 'tab\t', 'é'] }})"),
            R"(["it's", 'a"b', 'a"\'b', 'tab\t', 'é'])");
  EXPECT_EQ(render("{{ {'a': none, 'b': true, 'c': 1.5} }}"), "{'a': None, 'b': True, 'c': 1.5}");
  EXPECT_EQ(render("{{ namespace(a=1) }}"), "<Namespace {'a': 1}>");
}

TEST(JinjaEval, ErrorsInsideMacrosPointAtTheFailingNode) {
  EXPECT_EQ(render("{% macro m(x) %}\n  {{ x + 'a' }}\n{% endmacro %}{{ m(1) }}"),
            "ERROR: chat template: 2:8: unsupported operand type(s) for +: 'int' and 'str'");
}

TEST(JinjaEval, RaiseExceptionReportsTheTemplateMessage) {
  EXPECT_EQ(render("{% if true %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}"),
            "ERROR: chat template: 1:17: template raised an exception: Conversation roles must alternate");
}

TEST(JinjaEval, ContextVariablesFromJson) {
  const Json vars = {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
                     {"flag", false},
                     {"n", 3},
                     {"pi", 3.5},
                     {"nothing", nullptr}};
  EXPECT_EQ(
      render("{{ messages[0].content }} {{ flag }} {{ n }} {{ pi }} {{ nothing }} {{ nothing is none }}",
             vars),
      "hi False 3 3.5 None True");
}

}  // namespace
}  // namespace hearth
