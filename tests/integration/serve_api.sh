#!/usr/bin/env bash
# hearth serve end to end over loopback, with curl and python3 (stdlib): health/ready/models; the
# chat and completions response shapes (usage with cached/reasoning token details, logprobs in both
# APIs' forms); raw server-sent events (data: lines, strict JSON without duplicate keys, one usage
# chunk, [DONE] last); batches of prompts, n with seed, stop strings; every error as an OpenAI error
# object with its status (400, 404, 405, 413, context_length_exceeded); tokenize/detokenize round
# trip; greedy output equals `hearth generate`, alone and under 32 concurrent requests; /metrics
# through promtool; prefix-cache hits; --api-key; SIGTERM drains a running stream and exits 0.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
hearth_it_init


MODEL=$IT_TMP/tiny
NAME=hearth-test
check "model synth --preset tiny" "$HEARTH" model synth --preset tiny --out "$MODEL"
start_server main --model "$MODEL" --served-model-name "$NAME" --drain-timeout 10
export PORT NAME
U=http://127.0.0.1:$PORT

# Python helpers shared by the checks below (pycheck LABEL <<'PY' ... PY runs them with the snippet).
cat >"$IT_TMP/pre.py" <<'PY'
import http.client, json, os, sys, threading

PORT = int(os.environ["PORT"])
NAME = os.environ["NAME"]


def strict(text):
    """json.loads that refuses duplicate object keys."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys} in {text[:300]}"
        return dict(kv)
    return json.loads(text, object_pairs_hook=pairs)


def call(method, path, body=None, headers=None, port=None):
    """(status, {lower-case header: value}, bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port or PORT, timeout=60)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def post(path, body, headers=None, port=None):
    """(status, parsed JSON) of a POST."""
    s, _, data = call("POST", path, body, headers, port)
    return s, strict(data.decode())


def ok(path, body):
    s, d = post(path, body)
    assert s == 200, (s, d)
    return d


def is_error(d):
    e = d["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert isinstance(e["message"], str) and e["message"], e
    return e


def greedy(prompt, n_tokens=12):
    return ok("/v1/completions", {"model": NAME, "prompt": prompt, "max_tokens": n_tokens,
                                  "temperature": 0, "ignore_eos": True})["choices"][0]["text"]


def chat(content, **kw):
    return dict({"model": NAME, "messages": [{"role": "user", "content": content}]}, **kw)
PY
pycheck() {
  cat "$IT_TMP/pre.py" - >"$IT_TMP/check.py"
  check "$1" python3 "$IT_TMP/check.py"
}

# --- probes and models
check "GET /health is 200" curl -sf "$U/health"
check "GET /ready is 200 ready" bash -c "curl -sf '$U/ready' | grep -q '\"ready\"'"
pycheck "GET /v1/models lists the served name" <<'PY'
s, _, data = call("GET", "/v1/models")
d = strict(data)
assert s == 200 and d["object"] == "list" and [m["id"] for m in d["data"]] == [NAME], d
assert d["data"][0]["object"] == "model" and d["data"][0]["owned_by"] == "hearth", d
PY

# --- chat: non-streamed shape
pycheck "chat: response shape and usage details" <<'PY'
d = ok("/v1/chat/completions", chat("Hello there", max_tokens=8, temperature=0))
assert d["id"].startswith("chatcmpl-") and d["object"] == "chat.completion" and d["model"] == NAME, d
assert isinstance(d["created"], int), d
c = d["choices"][0]
assert c["index"] == 0 and c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str), c
assert c["finish_reason"] in ("stop", "length") and c["logprobs"] is None, c
u = d["usage"]
assert u["prompt_tokens"] > 0 and 0 < u["completion_tokens"] <= 8, u
assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u
assert u["prompt_tokens_details"]["cached_tokens"] == u["prompt_cache_hit_tokens"], u
assert u["prompt_cache_hit_tokens"] + u["prompt_cache_miss_tokens"] == u["prompt_tokens"], u
assert u["completion_tokens_details"]["reasoning_tokens"] == 0, u
PY
pycheck "chat: max_tokens 8 with ignore_eos gives 8 tokens and finish_reason length" <<'PY'
d = ok("/v1/chat/completions", chat("Hi", max_tokens=8, temperature=0, ignore_eos=True))
assert d["usage"]["completion_tokens"] == 8 and d["choices"][0]["finish_reason"] == "length", d
PY

# --- raw server-sent events with curl -N
sse_body() {
  printf '{"model":"%s","messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":%s,"temperature":0,"ignore_eos":true,"stream":true%s}' \
    "$NAME" "$1" "$2"
}
curl -sN "$U/v1/chat/completions" -H 'Content-Type: application/json' -d "$(sse_body 10 '')" >"$IT_TMP/sse1.txt"
curl -sN "$U/v1/chat/completions" -H 'Content-Type: application/json' \
  -d "$(sse_body 10 ',"stream_options":{"include_usage":true}')" >"$IT_TMP/sse2.txt"
export SSE1=$IT_TMP/sse1.txt SSE2=$IT_TMP/sse2.txt
pycheck "SSE: data: lines, strict JSON chunks, [DONE] last, text equals the non-streamed reply" <<'PY'
raw = open(os.environ["SSE1"], encoding="utf-8").read()
assert raw.endswith("data: [DONE]\n\n"), raw[-200:]
events = raw.split("\n\n")[:-1]
assert all(e.startswith("data: ") and "\n" not in e for e in events), events[:3]
chunks = [strict(e[6:]) for e in events[:-1]]
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant", chunks[0]
text = ""
for ch in chunks:
    assert ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] and "usage" not in ch, ch
    text += ch["choices"][0]["delta"].get("content", "")
assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
assert all(ch["choices"][0]["finish_reason"] is None for ch in chunks[:-1])
d = ok("/v1/chat/completions", chat("Tell me a story", max_tokens=10, temperature=0, ignore_eos=True))
assert text == d["choices"][0]["message"]["content"], (text, d)
PY
pycheck "SSE: include_usage: usage null per chunk, one usage chunk with choices [] before [DONE]" <<'PY'
events = open(os.environ["SSE2"], encoding="utf-8").read().split("\n\n")[:-1]
assert events[-1] == "data: [DONE]", events[-1]
chunks = [strict(e[6:]) for e in events[:-1]]
with_usage = [c for c in chunks if c["usage"] is not None]
assert len(with_usage) == 1 and with_usage[0] is chunks[-1], with_usage
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 10, chunks[-1]
assert all(c["choices"] for c in chunks[:-1])
PY

# --- completions
pycheck "completions: text prompt, token-id prompt" <<'PY'
d = ok("/v1/completions", {"model": NAME, "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "ignore_eos": True})
assert d["object"] == "text_completion" and d["id"].startswith("cmpl-"), d
assert len(d["choices"]) == 1 and isinstance(d["choices"][0]["text"], str) and d["usage"]["completion_tokens"] == 5, d
d = ok("/v1/completions", {"model": NAME, "prompt": [1, 2, 3, 4], "max_tokens": 5, "temperature": 0, "ignore_eos": True})
assert d["usage"]["prompt_tokens"] == 4 and d["choices"][0]["finish_reason"] == "length", d
PY
pycheck "completions: batch of 3 prompts x n=2 gives 6 choices, indices 0..5, prompt p owns p*n+i" <<'PY'
prompts = ["alpha beta", [5, 6, 7], "gamma"]
d = ok("/v1/completions", {"model": NAME, "prompt": prompts, "n": 2, "max_tokens": 4, "temperature": 0, "ignore_eos": True})
assert [c["index"] for c in d["choices"]] == list(range(6)), d
assert d["usage"]["completion_tokens"] == 24, d
for p, prompt in enumerate(prompts):  # greedy: both choices of a prompt equal that prompt alone
    alone = greedy(prompt, 4)
    assert d["choices"][2 * p]["text"] == alone == d["choices"][2 * p + 1]["text"], (p, alone, d)
PY
pycheck "n=2 with seed: reproducible, choices differ" <<'PY'
body = chat("Pick a number", n=2, seed=1234, temperature=1.0, max_tokens=12, ignore_eos=True)
a = ok("/v1/chat/completions", body)
b = ok("/v1/chat/completions", body)
ta = [c["message"]["content"] for c in a["choices"]]
assert len(ta) == 2 and ta == [c["message"]["content"] for c in b["choices"]], (a, b)
assert ta[0] != ta[1], ta
assert a["usage"]["completion_tokens"] == 24, a
PY

# --- logprobs
pycheck "chat logprobs: content[i] with token, logprob, bytes, top_logprobs (2, sorted)" <<'PY'
d = ok("/v1/chat/completions", chat("Hello", max_tokens=4, temperature=0, ignore_eos=True, logprobs=True, top_logprobs=2))
c = d["choices"][0]
lp = c["logprobs"]["content"]
assert len(lp) == 4 and "".join(e["token"] for e in lp) == c["message"]["content"], c
for e in lp:
    assert e["logprob"] <= 0 and bytes(e["bytes"]) == e["token"].encode(), e
    assert len(e["top_logprobs"]) == 2 and e["top_logprobs"][0]["logprob"] >= e["top_logprobs"][1]["logprob"], e
    assert e["top_logprobs"][0]["token"] == e["token"], e  # greedy: the pick is the best
PY
pycheck "completions logprobs: tokens, token_logprobs, top_logprobs, text_offset" <<'PY'
d = ok("/v1/completions", {"model": NAME, "prompt": [1, 2, 3], "max_tokens": 5, "temperature": 0, "ignore_eos": True, "logprobs": 3})
c = d["choices"][0]
lp = c["logprobs"]
assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}, lp
assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == 5, lp
assert "".join(lp["tokens"]) == c["text"], c
off = 0
for t, o, top, l in zip(lp["tokens"], lp["text_offset"], lp["top_logprobs"], lp["token_logprobs"]):
    assert o == off and len(top) == 3 and top[t] == l and l <= 0, (t, o, top, l)
    off += len(t)
PY
export MODEL
pycheck "an end-of-sequence token has its logprob entry (one per counted completion token)" <<'PY'
eos = json.load(open(os.environ["MODEL"] + "/config.json"))["eos_token_id"]
eos = eos[0] if isinstance(eos, list) else eos
for api, body in (("/v1/completions", {"prompt": [1, 2, 3], "logprobs": 2}),
                  ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "logprobs": True,
                                            "top_logprobs": 2})):
    d = ok(api, dict(body, model=NAME, max_tokens=5, temperature=0, logit_bias={str(eos): 100}))
    c = d["choices"][0]
    assert c["finish_reason"] == "stop" and d["usage"]["completion_tokens"] == 1, d
    lp = c["logprobs"]["tokens"] if api == "/v1/completions" else c["logprobs"]["content"]
    assert len(lp) == 1, d
    l = c["logprobs"]["token_logprobs"][0] if api == "/v1/completions" else lp[0]["logprob"]
    assert l <= 0, d  # the raw distribution's logprob (the bias steers the choice only)
    assert (c.get("text") or c.get("message", {}).get("content") or "") == "", d
PY

# --- stop strings
pycheck "stop string: the text ends before it, finish_reason stop (completions and chat)" <<'PY'
full = greedy([7, 8, 9], 24)
stop = full[len(full) // 2:len(full) // 2 + 3]
assert stop.strip(), full
want = full[:full.index(stop)]
d = ok("/v1/completions", {"model": NAME, "prompt": [7, 8, 9], "max_tokens": 24, "temperature": 0, "ignore_eos": True, "stop": [stop]})
assert d["choices"][0]["text"] == want and d["choices"][0]["finish_reason"] == "stop", (stop, want, d)
body = chat("Stop somewhere", max_tokens=24, temperature=0, ignore_eos=True)
full = ok("/v1/chat/completions", body)["choices"][0]["message"]["content"]
stop = full[len(full) // 2:len(full) // 2 + 3]
d = ok("/v1/chat/completions", dict(body, stop=stop))
assert d["choices"][0]["message"]["content"] == full[:full.index(stop)], (stop, full, d)
assert d["choices"][0]["finish_reason"] == "stop", d
PY

# --- errors: status and an OpenAI error object
# expect_api_error STATUS CODE PARAM-or-- CURL-ARGS...: the response has STATUS and {"error": {...}}
# with that code (- for null) and param (-- for any).
expect_api_error() {
  local want=$1 code=$2 param=$3
  shift 3
  local label=${CHECK:-"$want $code: $*"}
  local got
  got=$(curl -s -o "$IT_TMP/err.json" -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then
    fail "$label" "status $got, want $want" "body: $(head -c 400 "$IT_TMP/err.json")"
    return
  fi
  CHECK="$label" expect_json "$IT_TMP/err.json" \
    "set(d) == {'error'} and set(d['error']) == {'message', 'type', 'param', 'code'} and d['error']['message'] and d['error']['code'] == (None if '$code' == '-' else '$code') and ('$param' == '--' or d['error']['param'] == ('$param' or None))"
}
J=(-H 'Content-Type: application/json')
MSGS='"messages":[{"role":"user","content":"hi"}]'
CHECK="malformed JSON: 400" expect_api_error 400 - "" "$U/v1/chat/completions" "${J[@]}" -d '{"model":'
CHECK="unknown field: 400 naming it" expect_api_error 400 - bogus_field "$U/v1/chat/completions" "${J[@]}" \
  -d "{\"model\":\"$NAME\",$MSGS,\"bogus_field\":1}"
CHECK="unknown model: 404 model_not_found" expect_api_error 404 model_not_found model "$U/v1/chat/completions" "${J[@]}" \
  -d "{\"model\":\"no-such-model\",$MSGS}"
CHECK="prompt token id outside the vocabulary: 400" expect_api_error 400 - prompt "$U/v1/completions" "${J[@]}" \
  -d "{\"model\":\"$NAME\",\"prompt\":[1,2,999999999]}"
CHECK="max_tokens beyond the context: 400 context_length_exceeded" expect_api_error 400 context_length_exceeded -- \
  "$U/v1/completions" "${J[@]}" -d "{\"model\":\"$NAME\",\"prompt\":[1,2],\"max_tokens\":1000000}"
CHECK="chat max_tokens beyond the context: 400 context_length_exceeded" expect_api_error 400 context_length_exceeded -- \
  "$U/v1/chat/completions" "${J[@]}" -d "{\"model\":\"$NAME\",$MSGS,\"max_tokens\":1000000}"
CHECK="temperature out of range: 400" expect_api_error 400 - temperature "$U/v1/chat/completions" "${J[@]}" \
  -d "{\"model\":\"$NAME\",$MSGS,\"temperature\":3}"
head -c $((16 * 1024 * 1024 + 16)) /dev/zero | tr '\0' ' ' >"$IT_TMP/big.json"
CHECK="body over 16 MiB: 413" expect_api_error 413 - -- "$U/v1/completions" "${J[@]}" --data-binary "@$IT_TMP/big.json"
CHECK="GET on a POST endpoint: 405" expect_api_error 405 - -- "$U/v1/chat/completions"
check "405 carries Allow: POST" bash -c "curl -s -D - -o /dev/null '$U/v1/completions' | grep -qi '^allow: POST'"
CHECK="unknown path: 404" expect_api_error 404 - -- "$U/no/such/path"
CHECK="unknown /v1 path: 404 unknown_url" expect_api_error 404 unknown_url -- "$U/v1/no-such"
pycheck "a bad request leaves the keep-alive connection usable" <<'PY'
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
c.request("POST", "/v1/completions", body='{"model":', headers={"Content-Type": "application/json"})
r = c.getresponse(); r.read()
assert r.status == 400
c.request("GET", "/v1/models")
r = c.getresponse()
assert r.status == 200 and strict(r.read())["data"][0]["id"] == NAME
PY

# --- tokenize / detokenize
pycheck "/tokenize and /detokenize round trip" <<'PY'
text = "Hello, world! 你好 — 123"
d = ok("/tokenize", {"model": NAME, "prompt": text})
assert d["count"] == len(d["tokens"]) > 3 and d["max_model_len"] > 0, d
back = ok("/detokenize", {"model": NAME, "tokens": d["tokens"]})["prompt"]
assert back.endswith(text), (back, text)  # the tokenizer adds BOS for a text prompt
d2 = ok("/tokenize", {"model": NAME, "messages": [{"role": "user", "content": text}]})
assert d2["count"] > d["count"], d2
PY

# --- greedy output equals hearth generate, alone and under 32 concurrent requests
"$HEARTH" generate --model "$MODEL" --prompt-ids 11,22,33,44 -n 12 --temperature 0 --ignore-eos --json \
  >"$IT_TMP/gen.json" 2>"$IT_TMP/gen.err"
export GEN=$IT_TMP/gen.json
pycheck "greedy /v1/completions (token ids) equals hearth generate's text" <<'PY'
want = json.load(open(os.environ["GEN"]))
d = ok("/v1/completions", {"model": NAME, "prompt": [11, 22, 33, 44], "max_tokens": 12, "temperature": 0,
                           "ignore_eos": True, "logprobs": 0})
assert d["choices"][0]["text"] == want["text"], (d["choices"][0]["text"], want["text"])
assert len(d["choices"][0]["logprobs"]["tokens"]) == len(want["ids"]) == 12, d
PY
pycheck "32 concurrent greedy requests each equal the same request alone" <<'PY'
prompts = [[100 + i, 200 + 3 * i, 5000 + 17 * i] + [7] * (i % 5) for i in range(32)]
alone = [greedy(p) for p in prompts]
got = [None] * 32
def run(i):
    try:
        got[i] = greedy(prompts[i])
    except Exception as e:  # noqa: BLE001 - reported below
        got[i] = e
ts = [threading.Thread(target=run, args=(i,)) for i in range(32)]
for t in ts: t.start()
for t in ts: t.join()
bad = [(i, alone[i], got[i]) for i in range(32) if got[i] != alone[i]]
assert not bad, bad[:3]
assert len(set(alone)) > 16, alone  # different prompts, different outputs
PY

# --- prefix cache
pycheck "the same long prompt twice: cached_tokens > 0 the second time" <<'PY'
body = chat(" ".join(f"item{i}" for i in range(60)), max_tokens=2, temperature=0)
u1 = ok("/v1/chat/completions", body)["usage"]
u2 = ok("/v1/chat/completions", body)["usage"]
assert u1["prompt_tokens"] >= 64, u1
assert u2["prompt_tokens_details"]["cached_tokens"] > 0 and u2["prompt_cache_hit_tokens"] > 0, u2
assert u2["prompt_cache_hit_tokens"] + u2["prompt_cache_miss_tokens"] == u2["prompt_tokens"], u2
assert u2["prompt_tokens_details"]["cached_tokens"] > u1["prompt_tokens_details"]["cached_tokens"], (u1, u2)
PY

# --- metrics (the gauges follow at the engine's next step, which may come just after a response)
for ((i = 0; i < 50; i++)); do
  curl -s "$U/metrics" >"$IT_TMP/metrics.txt"
  grep -q '^hearth:num_requests_running{.*} 0$' "$IT_TMP/metrics.txt" && break
  sleep 0.1
done
promtool check metrics <"$IT_TMP/metrics.txt" >"$IT_TMP/promtool.txt" 2>&1
export METRICS=$IT_TMP/metrics.txt PROMTOOL=$IT_TMP/promtool.txt
if command -v promtool >/dev/null; then
  pycheck "promtool check metrics: only the ':' name lint" <<'PY'
lines = [l for l in open(os.environ["PROMTOOL"]).read().splitlines() if l.strip()]
other = [l for l in lines if not l.endswith("metric names should not contain ':'")]
assert not other, other
PY
else
  fail "promtool check metrics" "promtool is not installed (apt-get install prometheus)"
fi
pycheck "/metrics: the vLLM-named series are present and consistent" <<'PY'
text = open(os.environ["METRICS"]).read()
names = {l.split("{")[0].split(" ")[0] for l in text.splitlines() if l and not l.startswith("#")}
need = ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "prefix_cache_queries_total",
        "prefix_cache_hits_total", "num_preemptions_total", "prompt_tokens_total", "generation_tokens_total",
        "time_to_first_token_seconds_bucket", "inter_token_latency_seconds_bucket",
        "e2e_request_latency_seconds_bucket", "request_queue_time_seconds_bucket"]
missing = [n for n in need if "hearth:" + n not in names]
assert not missing, missing
val = {}  # each series name's values summed over its labels
for l in text.splitlines():
    if l.startswith("hearth:"):
        k, v = l.rsplit(" ", 1)
        val[k.split("{")[0]] = val.get(k.split("{")[0], 0) + float(v)
assert val["hearth:num_requests_running"] == 0 and val["hearth:num_requests_waiting"] == 0, val
assert val["hearth:prefix_cache_hits_total"] > 0 and val["hearth:generation_tokens_total"] > 100, val
assert val["hearth:prefix_cache_hits_total"] <= val["hearth:prefix_cache_queries_total"], val
PY

# --- API key: a second server
start_server keyed --model "$MODEL" --served-model-name "$NAME" --api-key sekret-123
export KPORT=$PORT
pycheck "--api-key: no key 401, wrong key 401 (invalid_api_key, WWW-Authenticate), right key 200; probes open" <<'PY'
K = int(os.environ["KPORT"])
body = {"model": NAME, "prompt": [1, 2], "max_tokens": 2}
for h in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekret-123"}):
    s, hd, data = call("POST", "/v1/completions", body, h, port=K)
    assert s == 401 and is_error(strict(data))["code"] == "invalid_api_key", (h, s, data)
    assert hd.get("www-authenticate", "").startswith("Bearer"), hd
s, _, _ = call("GET", "/v1/models", None, {}, port=K)
assert s == 401, s
s, _, data = call("POST", "/v1/completions", body, {"Authorization": "Bearer sekret-123"}, port=K)
assert s == 200 and strict(data)["choices"], (s, data)
for p in ("/health", "/ready", "/metrics"):
    s, _, _ = call("GET", p, None, {}, port=K)
    assert s == 200, (p, s)
PY
kill -TERM "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null

# --- SIGTERM on the main server: a running stream completes, new requests are refused, exit 0
PORT=$(cat "$IT_TMP/main.port")
MAIN_PID=${SERVER_PIDS[0]}
export MAIN_PID PORT
pycheck "SIGTERM: the running stream completes with [DONE]; new requests get 503; /ready 503" <<'PY'
import signal
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
c.request("POST", "/v1/completions", body=json.dumps({"model": NAME, "prompt": [3, 1, 4, 1, 5], "max_tokens": 800,
          "temperature": 0, "ignore_eos": True, "stream": True}), headers={"Content-Type": "application/json"})
r = c.getresponse()
assert r.status == 200
lines = [r.readline() for _ in range(6)]  # a few events (3 chunks) before the signal
os.kill(int(os.environ["MAIN_PID"]), signal.SIGTERM)
refused = []
for _ in range(100):  # until the server has seen the signal
    try:
        s, h, data = call("POST", "/v1/completions", {"model": NAME, "prompt": [1, 2], "max_tokens": 2})
    except OSError as e:
        refused.append(repr(e)); break
    if s == 503:
        e = is_error(strict(data))
        assert e["code"] == "service_unavailable" and h.get("retry-after"), (e, h)
        refused.append(s)
        s, _, data = call("GET", "/ready")
        assert s == 503 and b"draining" in data, (s, data)
        break
    assert s == 200, s
assert refused, "new requests were still served"
rest = r.read().decode()
events = [e for e in ("".join(l.decode() for l in lines) + rest).split("\n\n") if e]
assert events[-1] == "data: [DONE]", events[-3:]
chunks = [strict(e[6:]) for e in events[:-1]]
assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
assert len("".join(ch["choices"][0]["text"] for ch in chunks)) > 0
PY
exited=
for ((i = 0; i < 150; i++)); do  # --drain-timeout 10 and a margin
  if ! kill -0 "$MAIN_PID" 2>/dev/null; then exited=1; break; fi
  sleep 0.1
done
[ -z "$exited" ] && kill -KILL "$MAIN_PID" 2>/dev/null
rc=0
wait "$MAIN_PID" || rc=$?
if [ -n "$exited" ] && [ "$rc" = 0 ]; then
  pass "SIGTERM: the server exits 0 after draining"
else
  fail "SIGTERM: the server exits 0 after draining" "exited: ${exited:-no (killed)}, status $rc" "$(tail -5 "$IT_TMP/main.log")"
fi
finish
