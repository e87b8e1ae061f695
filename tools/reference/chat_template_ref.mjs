// Renders the chat template conformance suite with the JavaScript reference and writes
// tests/fixtures/chat_templates/expected_lenml.json.
//
// Run from the repository root:  node tools/reference/chat_template_ref.mjs
//
// Engine: @lenml/tokenizers' apply_chat_template (a port of transformers.js). Its bundled Jinja
// engine (@huggingface/jinja 0.2.x) cannot parse some current templates (Qwen3's `messages[::-1]`,
// DeepSeek-R1's `content.split(...)[-1]` inside `set`, no `tojson`), so for a template that the
// bundled engine rejects, the script renders the same context with the current @huggingface/jinja
// (the engine transformers.js uses today) when it is installed:
//   npm install --prefix .cache/hf-jinja @huggingface/jinja@0.5.11
// The output records which engine rendered each template. The context is what apply_chat_template
// passes: messages, tools (null when absent), documents (null), add_generation_prompt, the
// tokenizer's special tokens, then the case's extra kwargs.
import fs from "node:fs";
import path from "node:path";

const root = process.cwd();
const npm = path.join(root, ".cache/npm/node_modules");
const fixtures = path.join(root, "tests/fixtures/chat_templates");
const { TokenizerLoader } = await import(path.join(npm, "@lenml/tokenizers/dist/main.mjs"));
const lenmlVersion = JSON.parse(fs.readFileSync(path.join(npm, "@lenml/tokenizers/package.json"))).version;

let HfTemplate = null, hfJinjaVersion = null;
for (const base of [path.join(root, ".cache/hf-jinja/node_modules"), npm]) {
  const pkg = path.join(base, "@huggingface/jinja/package.json");
  if (fs.existsSync(pkg)) {
    hfJinjaVersion = JSON.parse(fs.readFileSync(pkg)).version;
    ({ Template: HfTemplate } = await import(path.join(base, "@huggingface/jinja/dist/index.js")));
    break;
  }
}

const suite = JSON.parse(fs.readFileSync(path.join(fixtures, "conversations.json"), "utf8"));
const tokenizers = new Map();
function tokenizerFor(configPath) {
  if (!tokenizers.has(configPath)) {
    const dir = path.dirname(path.join(npm, configPath));
    tokenizers.set(configPath, TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
      tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
    }));
  }
  return tokenizers.get(configPath);
}

const SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];
function renderWithHfJinja(tok, template, c) {
  const context = { messages: c.messages, add_generation_prompt: c.add_generation_prompt,
                    tools: c.tools ?? null, documents: null };
  for (const k of SPECIAL) { const v = tok.getToken(k); if (v) context[k] = v; }
  Object.assign(context, c.kwargs ?? {});
  return new HfTemplate(template).render(structuredClone(context));
}
function renderWithLenml(tok, template, c) {
  const options = { tokenize: false, add_generation_prompt: c.add_generation_prompt, ...(c.kwargs ?? {}) };
  if (c.tools !== undefined) options.tools = c.tools;
  if (template !== undefined) options.chat_template = template;
  // Deep copies: a template must not be able to affect the next case.
  return tok.apply_chat_template(structuredClone(c.messages), structuredClone(options));
}
function bundledEngineParses(tok, template) {
  try {
    tok.apply_chat_template([{ role: "user", content: "x" }], { tokenize: false, chat_template: template });
    return true;
  } catch (e) {
    return !/Parser Error|Unexpected|Unknown .* filter/i.test(String(e && e.message));
  }
}

const results = {}, engines = {};
let rendered = 0, errors = 0;
for (const t of suite.templates) {
  const tok = tokenizerFor(t.config);
  const template = t.template ? fs.readFileSync(path.join(fixtures, t.template), "utf8") : tok.chat_template;
  let render = (c) => renderWithLenml(tok, t.template ? template : undefined, c);
  engines[t.name] = `@lenml/tokenizers ${lenmlVersion} apply_chat_template`;
  const needsHf = !bundledEngineParses(tok, template) ||
                  (template.includes("tojson") && !bundledEngineParses(tok, "{{ [1]|tojson }}"));
  if (needsHf) {
    if (!HfTemplate) {
      console.error(`${t.name}: the bundled engine cannot render this template; install @huggingface/jinja ` +
                    `(npm install --prefix .cache/hf-jinja @huggingface/jinja@0.5.11) and re-run`);
      process.exit(1);
    }
    render = (c) => renderWithHfJinja(tok, template, c);
    engines[t.name] = `@huggingface/jinja ${hfJinjaVersion} Template.render (apply_chat_template context)`;
  }
  results[t.name] = {};
  for (const c of suite.cases) {
    try {
      results[t.name][c.name] = { output: render(c) };
      rendered++;
    } catch (e) {
      results[t.name][c.name] = { error: String(e && e.message ? e.message : e) };
      errors++;
    }
  }
}
const doc = { generator: "tools/reference/chat_template_ref.mjs", engines, results };
fs.writeFileSync(path.join(fixtures, "expected_lenml.json"), JSON.stringify(doc, null, 1) + "\n");
console.log(`rendered ${rendered}, errors ${errors} -> tests/fixtures/chat_templates/expected_lenml.json`);
for (const [k, v] of Object.entries(engines)) console.log(`  ${k}: ${v}`);
