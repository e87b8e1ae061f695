// The official openai npm SDK against a running `hearth serve` (started by serve_openai_sdk.sh):
// models.list, chat.completions.create (JSON and for-await streaming with include_usage),
// completions.create, the chat.completions.stream helper, the SDK's typed errors, and a stream
// aborted with an AbortController whose request frees its KV blocks. Prints one "ok - ..." or
// "FAIL - ..." line per check; exits 1 on any failure.
//   HEARTH_URL=http://127.0.0.1:PORT HEARTH_MODEL=NAME HEARTH_API_KEY=KEY OPENAI_SDK=.../openai/index.mjs
//   [HEARTH_METRICS_URL=the hearth serve whose /metrics to read, when HEARTH_URL is a gateway in front of it]
import { pathToFileURL } from "node:url";

const { default: OpenAI, NotFoundError, BadRequestError, AuthenticationError, APIUserAbortError } = await import(
  pathToFileURL(process.env.OPENAI_SDK).href
);
const url = process.env.HEARTH_URL;
const model = process.env.HEARTH_MODEL;
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: process.env.HEARTH_API_KEY, maxRetries: 0, timeout: 30000 });

let failed = 0;
async function check(label, fn) {
  try {
    await fn();
    console.log(`ok - ${label}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${label}`);
    console.log(`  ${String(e && e.stack ? e.stack : e).split("\n").slice(0, 4).join("\n  ")}`);
  }
}
function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}
const user = (content) => [{ role: "user", content }];
// The value of one unlabelled-but-model_name series from /metrics.
async function metric(name) {
  const text = await (await fetch(`${process.env.HEARTH_METRICS_URL || url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  assert(line, `${name} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

await check("models.list: the served model", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert(ids.length === 1 && ids[0] === model, `ids ${JSON.stringify(ids)}`);
});

const greedy = { model, messages: user("Write a haiku"), max_tokens: 12, temperature: 0, ignore_eos: true };
let reference = null;
await check("chat.completions.create: message, finish_reason, usage", async () => {
  const r = await client.chat.completions.create(greedy);
  assert(r.object === "chat.completion" && r.model === model && r.id.startsWith("chatcmpl-"), JSON.stringify(r));
  const c = r.choices[0];
  assert(c.message.role === "assistant" && typeof c.message.content === "string", JSON.stringify(c));
  assert(c.finish_reason === "length", c.finish_reason);
  assert(r.usage.completion_tokens === 12 && r.usage.prompt_tokens > 0, JSON.stringify(r.usage));
  assert(typeof r.usage.prompt_tokens_details.cached_tokens === "number", JSON.stringify(r.usage));
  reference = c.message.content;
});

await check("chat stream (for await, include_usage): same text, one usage chunk last", async () => {
  const stream = await client.chat.completions.create({ ...greedy, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usageChunks = 0;
  let finish = null;
  let role = null;
  let last = null;
  for await (const chunk of stream) {
    assert(chunk.object === "chat.completion.chunk", JSON.stringify(chunk));
    last = chunk;
    if (chunk.usage) usageChunks++;
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      text += c.delta.content ?? "";
      finish = c.finish_reason ?? finish;
    }
  }
  assert(role === "assistant", `role ${role}`);
  assert(text === reference, `stream ${JSON.stringify(text)} vs ${JSON.stringify(reference)}`);
  assert(finish === "length", `finish ${finish}`);
  assert(usageChunks === 1 && last.choices.length === 0 && last.usage.completion_tokens === 12, JSON.stringify(last));
});

await check("chat.completions.stream helper: content events and finalChatCompletion", async () => {
  const runner = client.chat.completions.stream(greedy);
  let deltas = "";
  runner.on("content", (delta) => {
    deltas += delta;
  });
  const final = await runner.finalChatCompletion();
  assert(final.choices[0].message.content === reference, JSON.stringify(final.choices[0]));
  assert(deltas === reference, `content events ${JSON.stringify(deltas)}`);
  assert(final.choices[0].finish_reason === "length", final.choices[0].finish_reason);
});

await check("completions.create: token-id prompt, text prompt batch with n=2", async () => {
  const r = await client.completions.create({ model, prompt: [1, 2, 3], max_tokens: 6, temperature: 0, ignore_eos: true });
  assert(r.object === "text_completion" && r.choices.length === 1 && typeof r.choices[0].text === "string", JSON.stringify(r));
  assert(r.usage.prompt_tokens === 3 && r.usage.completion_tokens === 6, JSON.stringify(r.usage));
  const b = await client.completions.create({ model, prompt: ["one", "two"], n: 2, max_tokens: 3, seed: 5 });
  assert(b.choices.length === 4 && b.choices.map((c) => c.index).join() === "0,1,2,3", JSON.stringify(b.choices));
});

await check("completions stream: chunks concatenate to the non-streamed text", async () => {
  const body = { model, prompt: "The quick brown fox", max_tokens: 10, temperature: 0, ignore_eos: true };
  const want = (await client.completions.create(body)).choices[0].text;
  let text = "";
  for await (const chunk of await client.completions.create({ ...body, stream: true })) text += chunk.choices[0]?.text ?? "";
  assert(text === want, `${JSON.stringify(text)} vs ${JSON.stringify(want)}`);
});

await check("unknown model: NotFoundError, status 404, code model_not_found", async () => {
  try {
    await client.chat.completions.create({ ...greedy, model: "no-such-model" });
  } catch (e) {
    assert(e instanceof NotFoundError && e.status === 404, `${e.constructor.name} ${e.status}`);
    assert(e.code === "model_not_found" && e.param === "model" && e.type === "invalid_request_error", e.message);
    return;
  }
  throw new Error("no error");
});

await check("bad request: BadRequestError, status 400, param named", async () => {
  try {
    await client.chat.completions.create({ ...greedy, temperature: 7 });
  } catch (e) {
    assert(e instanceof BadRequestError && e.status === 400 && e.param === "temperature", `${e.constructor.name} ${e.status} ${e.param}`);
    return;
  }
  throw new Error("no error");
});

await check("context too long: BadRequestError with code context_length_exceeded", async () => {
  try {
    await client.completions.create({ model, prompt: [1, 2], max_tokens: 1000000 });
  } catch (e) {
    assert(e instanceof BadRequestError && e.code === "context_length_exceeded", `${e.constructor.name} ${e.code}`);
    return;
  }
  throw new Error("no error");
});

await check("wrong API key: AuthenticationError, status 401", async () => {
  const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: "wrong-key", maxRetries: 0 });
  try {
    await bad.models.list();
  } catch (e) {
    assert(e instanceof AuthenticationError && e.status === 401, `${e.constructor.name} ${e.status}`);
    return;
  }
  throw new Error("no error");
});

await check("abort mid-stream: the request stops and frees its KV blocks within 2 s", async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages: user("Go on forever"), max_tokens: 8000, temperature: 0, ignore_eos: true, stream: true },
    { signal: controller.signal },
  );
  let chunks = 0;
  let aborted = false;
  try {
    for await (const _ of stream) {
      if (++chunks === 3) {
        assert((await metric("hearth:num_requests_running")) === 1, "running 1 while streaming");
        assert((await metric("hearth:kv_cache_usage_perc")) > 0, "KV blocks in use while streaming");
        controller.abort();
      }
    }
  } catch (e) {
    aborted = e instanceof APIUserAbortError || e.name === "AbortError";
    if (!aborted) throw e;
  }
  assert(aborted || chunks >= 3, `stream ended after ${chunks} chunks without an abort`);
  const deadline = Date.now() + 2000;
  let running, kv;
  for (;;) {
    running = await metric("hearth:num_requests_running");
    kv = await metric("hearth:kv_cache_usage_perc");
    if ((running === 0 && kv === 0) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert(running === 0 && kv === 0, `running ${running}, kv_cache_usage_perc ${kv} after 2 s`);
  const gen = await metric("hearth:generation_tokens_total");
  assert(gen < 8000, `generation_tokens_total ${gen}: the aborted request kept generating`);
});

await check("after the abort the server still answers", async () => {
  const r = await client.chat.completions.create(greedy);
  assert(r.choices[0].message.content === reference, JSON.stringify(r.choices[0]));
});

console.log(`${failed === 0 ? "all passed" : `${failed} failed`}`);
process.exit(failed === 0 ? 0 : 1);
