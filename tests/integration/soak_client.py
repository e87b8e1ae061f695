#!/usr/bin/env python3
"""Mixed-request soak client for hearth serve (stdlib only).

THREADS workers send, until DURATION seconds have passed, a random mix of: completions and chat, streamed
and not, greedy and sampled (temperature / top_p / top_k / seed, n=2), logprobs, stop strings, long prompts
(chunked prefill), shared prefixes (prefix cache), json_object output, clients that hang up mid-stream, and
invalid requests (which must get 400). Every response is checked (status, OpenAI shape, usage arithmetic,
max_tokens respected, streams end with [DONE]). Prints one JSON summary line; exits 1 on any failure.

Usage: soak_client.py PORT MODEL DURATION THREADS [SEED]
"""
import http.client
import json
import random
import socket
import sys
import threading
import time

PORT, MODEL, DURATION, THREADS = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
SEED = int(sys.argv[5]) if len(sys.argv) > 5 else 1
WORDS = ("the river runs past old stone walls where market traders call out prices for bread fish and "
         "cloth while children chase pigeons across the square and bells ring the hour").split()
SHARED = " ".join(WORDS * 6)  # a common prefix: later requests hit the prefix cache

lock = threading.Lock()
counts = {}
failures = []


def count(kind):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1


def failed(kind, why):
    with lock:
        if len(failures) < 20:
            failures.append(f"{kind}: {why}"[:400])
        counts["failed"] = counts.get("failed", 0) + 1


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def post(path, body, timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    return c, r


def read_json(path, body):
    c, r = post(path, body)
    data = r.read()
    c.close()
    return r.status, data


def read_stream(path, body):
    """(status, list of parsed chunks, saw [DONE])."""
    c, r = post(path, body)
    if r.status != 200:
        data = r.read()
        c.close()
        return r.status, data, False
    chunks, done, buf = [], False, b""
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        payload = line[6:]
        if payload == b"[DONE]":
            done = True
            continue
        chunks.append(json.loads(payload))
    c.close()
    return 200, chunks, done


def check_usage(kind, u, max_tokens, n=1):
    if not u or u["prompt_tokens"] <= 0 or u["completion_tokens"] < 0:
        return failed(kind, f"bad usage {u}")
    if u["completion_tokens"] > max_tokens * n:
        return failed(kind, f"{u['completion_tokens']} tokens > max_tokens {max_tokens} x n {n}")
    if u["total_tokens"] != u["prompt_tokens"] + u["completion_tokens"]:
        failed(kind, f"total_tokens does not add up: {u}")


def one(rng):
    kind = rng.choice(["completion", "completion", "chat", "chat_stream", "chat_stream", "sampled_n2",
                       "logprobs", "stop", "long_prompt", "shared_prefix", "json_object", "abort", "abort",
                       "invalid"])
    max_tokens = rng.randint(1, 160)
    try:
        if kind in ("completion", "long_prompt", "shared_prefix", "stop", "logprobs"):
            words = {"long_prompt": rng.randint(600, 1400)}.get(kind, rng.randint(3, 120))
            prompt = (SHARED + " " if kind == "shared_prefix" else "") + text(rng, words)
            body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
            if kind == "stop":
                body["stop"] = ["the", "\n"]
            if kind == "logprobs":
                body["logprobs"] = 3
            status, data = read_json("/v1/completions", body)
            if status != 200:
                return failed(kind, f"status {status}: {data[:200]!r}")
            d = json.loads(data)
            ch = d["choices"][0]
            if ch["finish_reason"] not in ("stop", "length"):
                return failed(kind, f"finish_reason {ch['finish_reason']}")
            if kind == "logprobs":
                lp = ch["logprobs"]
                if len(lp["tokens"]) != d["usage"]["completion_tokens"] or any(
                        len(t) > 3 for t in lp["top_logprobs"]) or any(v > 1e-6 for v in lp["token_logprobs"]):
                    return failed(kind, "logprobs do not match the tokens")
            check_usage(kind, d["usage"], max_tokens)
        elif kind in ("chat", "sampled_n2", "json_object"):
            body = {"model": MODEL, "messages": [{"role": "user", "content": text(rng, rng.randint(3, 60))}],
                    "max_tokens": max_tokens}
            n = 1
            if kind == "sampled_n2":
                n = 2
                body.update(n=2, temperature=0.8, top_p=0.9, top_k=50, seed=rng.randint(0, 1 << 30))
            if kind == "json_object":
                body["response_format"] = {"type": "json_object"}
            status, data = read_json("/v1/chat/completions", body)
            if status != 200:
                return failed(kind, f"status {status}: {data[:200]!r}")
            d = json.loads(data)
            if len(d["choices"]) != n:
                return failed(kind, f"{len(d['choices'])} choices, asked {n}")
            check_usage(kind, d["usage"], max_tokens, n)
        elif kind == "chat_stream":
            body = {"model": MODEL, "messages": [{"role": "user", "content": text(rng, rng.randint(3, 60))}],
                    "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
                    "temperature": rng.choice([0, 0.7, 1.0])}
            status, chunks, done = read_stream("/v1/chat/completions", body)
            if status != 200:
                return failed(kind, f"status {status}: {chunks[:200]!r}")
            if not done:
                return failed(kind, "no [DONE]")
            usage = [c["usage"] for c in chunks if c.get("usage")]
            if len(usage) != 1:
                return failed(kind, f"{len(usage)} usage chunks")
            check_usage(kind, usage[0], max_tokens)
        elif kind == "abort":
            # Read a few chunks, then hang up: the server must cancel the sequence and free its KV blocks.
            body = {"model": MODEL, "prompt": text(rng, rng.randint(3, 200)), "max_tokens": 400, "stream": True,
                    "ignore_eos": True}
            c, r = post("/v1/completions", body)
            if r.status != 200:
                c.close()
                return failed(kind, f"status {r.status}")
            for _ in range(rng.randint(0, 8)):
                r.readline()
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
        elif kind == "invalid":
            body = rng.choice([
                {"model": MODEL, "prompt": "x", "max_tokens": -1},
                {"model": MODEL, "messages": "not a list"},
                {"model": MODEL, "prompt": "x", "temperature": "hot"},
                {"model": MODEL, "prompt": "x", "n": 0},
            ])
            status, data = read_json("/v1/chat/completions" if "messages" in body else "/v1/completions", body)
            if status != 400 or json.loads(data).get("error", {}).get("message") is None:
                return failed(kind, f"status {status} (want 400 with an error object): {data[:200]!r}")
        count(kind)
    except Exception as e:  # noqa: BLE001 - every exception is a soak failure
        failed(kind, repr(e))


def worker(i, deadline):
    rng = random.Random(SEED * 1000 + i)
    while time.time() < deadline:
        one(rng)


def main():
    deadline = time.time() + DURATION
    ts = [threading.Thread(target=worker, args=(i, deadline)) for i in range(THREADS)]
    for t in ts:
        t.start()
    start = last = time.time()
    while any(t.is_alive() for t in ts):  # progress on stderr every 30 s
        time.sleep(0.5)
        if time.time() - last < 30:
            continue
        last = time.time()
        with lock:
            done = sum(v for k, v in counts.items() if k != "failed")
            print(f"soak: {time.time() - start:.0f}s, {done} ok, {counts.get('failed', 0)} failed", file=sys.stderr,
                  flush=True)
    for t in ts:
        t.join()
    ok = sum(v for k, v in counts.items() if k != "failed")
    print(json.dumps({"requests_ok": ok, "failed": counts.get("failed", 0), "by_kind": counts,
                      "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
