// OpenAI request parsing as a specification: what is accepted becomes typed, bounded fields; what is
// not gets the OpenAI error object naming the field, with a 4xx status.
#include "server/openai_request.h"

#include <gtest/gtest.h>

namespace hearth::server {
namespace {

const ChatCompletionRequest& ok_chat(const ChatParse& p) {
  if (const auto* e = std::get_if<ApiError>(&p)) ADD_FAILURE() << e->to_json().dump();
  return std::get<ChatCompletionRequest>(p);
}

ApiError err(const ChatParse& p) {
  EXPECT_TRUE(std::holds_alternative<ApiError>(p)) << "accepted";
  return std::holds_alternative<ApiError>(p) ? std::get<ApiError>(p) : ApiError{};
}

std::string chat(const std::string& extra) {
  return R"({"model":"deepseek","messages":[{"role":"user","content":"Hi"}])" + extra + "}";
}

TEST(OpenAiRequest, AMinimalChatGetsTheDefaults) {
  const ChatParse parsed = parse_chat_completion(chat(""));
  const auto& r = ok_chat(parsed);
  EXPECT_EQ(r.model, "deepseek");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "Hi");
  EXPECT_EQ(r.gen.n, 1);
  EXPECT_FALSE(r.gen.stream);
  EXPECT_FALSE(r.gen.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.gen.sampling.seed.has_value());
}

TEST(OpenAiRequest, EveryFieldIsRead) {
  const ChatParse parsed = parse_chat_completion(chat(
      R"(,"stream":true,"stream_options":{"include_usage":true},"n":3,"stop":["a","bb"],"max_completion_tokens":64,)"
      R"("temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"presence_penalty":0.5,"frequency_penalty":-0.5,)"
      R"("repetition_penalty":1.1,"seed":42,"logprobs":true,"top_logprobs":5,"user":"alice","priority":-3,)"
      R"("response_format":{"type":"json_object"},"parallel_tool_calls":false,"store":false,)"
      R"("logit_bias":{"50256":-100,"7":2.5})"));
  const auto& r = ok_chat(parsed);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_TRUE(r.gen.include_usage);
  EXPECT_EQ(r.gen.n, 3);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"a", "bb"}));
  EXPECT_EQ(r.gen.max_tokens, 64);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(r.gen.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(r.gen.sampling.seed, 42u);
  EXPECT_TRUE(r.gen.logprobs);
  EXPECT_EQ(r.gen.sampling.top_logprobs, 5);
  EXPECT_EQ(r.gen.user, "alice");
  EXPECT_EQ(r.gen.priority, -3);
  EXPECT_TRUE(r.json_object);
  EXPECT_EQ(r.gen.sampling.logit_bias, (std::vector<std::pair<int32_t, float>>{{50256, -100.0f}, {7, 2.5f}}));
}

TEST(OpenAiRequest, MessagesAreNormalisedForTheChatTemplate) {
  const ChatParse parsed = parse_chat_completion(
      R"({"model":"m","messages":[{"role":"developer","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":{"x":1}}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":"42"}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"})");
  const auto& r = ok_chat(parsed);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "ab");
  EXPECT_TRUE(r.messages[2]["content"].is_null())
      << "kept null: DeepSeek's templates render tool calls only then";
  EXPECT_EQ(r.messages[2]["tool_calls"][0]["function"]["arguments"], R"({"x":1})")
      << "arguments as a JSON string, as DeepSeek's template prints them";
  EXPECT_EQ(r.messages[3]["tool_call_id"], "c1");
  ASSERT_TRUE(r.tools.has_value());
  EXPECT_EQ(r.tool_choice, "required");
}

TEST(OpenAiRequest, BadValuesNameTheirField) {
  struct Case {
    std::string extra;
    std::string param;
    std::string text;
  };
  const Case cases[] = {
      {R"(,"n":0)", "n", "[1, 16]"},
      {R"(,"n":17)", "n", "[1, 16]"},
      {R"(,"max_tokens":0)", "max_tokens", "[1,"},
      {R"(,"max_tokens":1.5)", "max_tokens", "integer"},
      {R"(,"temperature":-1)", "temperature", "[0, 2]"},
      {R"(,"temperature":"hot")", "temperature", "number"},
      {R"(,"top_p":0)", "top_p", "(0, 1]"},
      {R"(,"top_logprobs":21,"logprobs":true)", "top_logprobs", "[0, 20]"},
      {R"(,"top_logprobs":2)", "top_logprobs", "requires 'logprobs'"},
      {R"(,"stop":["a","b","c","d","e"])", "stop", "more than 4"},
      {R"(,"stop":[""])", "stop", "1 to 256 bytes"},
      {R"(,"stop":7)", "stop", "string or an array"},
      {R"(,"stream_options":{"include_usage":true})", "stream_options", "only allowed when 'stream'"},
      {R"(,"max_tokens":10,"max_completion_tokens":11)", "max_completion_tokens", "differ"},
      {R"(,"best_of":3)", "best_of", "not supported"},
      {R"(,"logit_bias":{"x1":5})", "logit_bias", "not a token id"},
      {R"(,"logit_bias":{"-1":5})", "logit_bias", "not a token id"},
      {R"(,"logit_bias":{"7":101})", "logit_bias", "[-100, 100]"},
      {R"(,"logit_bias":{"7":"up"})", "logit_bias", "[-100, 100]"},
      {R"(,"logit_bias":[7])", "logit_bias", "object"},
      {R"(,"tool_choice":"required")", "tool_choice", "needs 'tools'"},
      {R"(,"response_format":{"type":"json_schema"})", "response_format", "text or json_object"},
      {R"(,"frobnicate":true)", "frobnicate", "Unrecognized request argument supplied: frobnicate"},
      {R"(,"n":16,"max_tokens":1048576,"logprobs":true,"top_logprobs":20)", "n", "exceeds"},
  };
  for (const Case& c : cases) {
    const ApiError e = err(parse_chat_completion(chat(c.extra)));
    EXPECT_EQ(e.status, 400) << c.extra;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_EQ(e.param, c.param) << c.extra;
    EXPECT_NE(e.message.find(c.text), std::string::npos) << c.extra << " -> " << e.message;
  }
}

TEST(OpenAiRequest, MalformedBodiesAreClientErrors) {
  EXPECT_EQ(err(parse_chat_completion("{")).message, "the request body is not valid JSON");
  EXPECT_EQ(err(parse_chat_completion("[]")).message, "the request body must be a JSON object");
  EXPECT_EQ(err(parse_chat_completion("{\"model\":\"\xff\"}")).message,
            "the request body is not valid UTF-8");
  EXPECT_EQ(err(parse_chat_completion(R"({"messages":[{"role":"user","content":"x"}]})")).param, "model");
  EXPECT_EQ(err(parse_chat_completion(R"({"model":"m","messages":[]})")).param, "messages");
  EXPECT_EQ(err(parse_chat_completion(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})")).param,
            "messages[0].role");
  EXPECT_EQ(err(parse_chat_completion(R"({"model":"m","messages":[{"role":"user"}]})")).param,
            "messages[0].content");
  EXPECT_EQ(err(parse_chat_completion(R"({"model":"m","messages":[{"role":"tool","content":"x"}]})")).param,
            "messages[0].tool_call_id");
  std::string deep = "{\"model\":\"m\",\"messages\":" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_EQ(err(parse_chat_completion(deep)).status, 400);
  RequestLimits small;
  small.max_body_bytes = 16;
  EXPECT_EQ(err(parse_chat_completion(chat(""), small)).status, 413);
  const ApiError e = err(parse_chat_completion("{"));
  EXPECT_EQ(
      e.to_json().dump(),
      R"({"error":{"message":"the request body is not valid JSON","type":"invalid_request_error","param":null,"code":null}})");
}

TEST(OpenAiRequest, CompletionPromptsInEveryForm) {
  auto one = parse_completion(R"({"model":"m","prompt":"hello"})");
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(one));
  EXPECT_EQ(std::get<std::string>(std::get<CompletionRequest>(one).prompts[0]), "hello");
  EXPECT_EQ(std::get<CompletionRequest>(one).gen.max_tokens, 16) << "the completions API's default";
  auto ids = parse_completion(R"({"model":"m","prompt":[1,2,3],"logprobs":2,"echo":true})");
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(ids));
  const auto& r = std::get<CompletionRequest>(ids);
  EXPECT_EQ(std::get<std::vector<int32_t>>(r.prompts[0]), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.gen.sampling.top_logprobs, 2);
  auto batch = parse_completion(R"({"model":"m","prompt":["a",[4,5]]})");
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(batch));
  EXPECT_EQ(std::get<CompletionRequest>(batch).prompts.size(), 2u);
  for (const char* bad :
       {R"({"model":"m","prompt":[-1]})", R"({"model":"m","prompt":[]})", R"({"model":"m"})",
        R"({"model":"m","prompt":[[1],{}]})", R"({"model":"m","prompt":"x","suffix":"y"})",
        R"({"model":"m","prompt":"x","logprobs":21})"}) {
    auto p = parse_completion(bad);
    ASSERT_TRUE(std::holds_alternative<ApiError>(p)) << bad;
    EXPECT_EQ(std::get<ApiError>(p).status, 400);
  }
}

}  // namespace
}  // namespace hearth::server
