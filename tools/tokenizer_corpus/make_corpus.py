#!/usr/bin/env python3
"""Builds the tokenizer conformance corpus: tests/fixtures/tokenizer/corpus.jsonl.

Deterministic (fixed seed). Each line of the output is one JSON string: a test input, which may hold
newlines. Covers: English, Chinese, Japanese, Korean, Arabic, Hindi, Russian, Thai, emoji incl. ZWJ
sequences, skin tones and flags, combining marks, code, numbers and dates, runs of spaces, tabs,
newlines and CRLF, special tokens inside text, very long words, random code points from many
blocks, and the empty input.
"""
import json
import random
import sys

SEED_TEXT = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Private deployment keeps prompts and answers inside the building.",
        "I'm sure you'll see it's what we've done, isn't it? They'd say we're fine.",
        "Dr. Smith's patients (aged 18-65) reported a 12.5% improvement.",
        "Hello, world! How are you doing today?",
        "We don't know; they won't tell. She'll decide by Friday.",
        "ALL CAPS SENTENCE WITH NUMBERS 2026 AND SYMBOLS #@!",
        "e-mail: ops@example.com, url: https://example.com/a/b?c=d&e=f#g",
        "Tokenization edge cases: 'quoted', \"double\", `backtick`, and ...ellipsis",
        "Mixed123Numbers456and789Letters",
    ],
    "zh": [
        "深度求索发布了新的大语言模型。",
        "私有化部署可以确保数据不出企业内网，满足等保2.0三级要求。",
        "请问今天北京的天气怎么样？",
        "银行信用卡中心的反欺诈模型延迟从3.2秒降到0.8秒。",
        "我们使用动态批处理来提高GPU利用率，使其保持在75%以上。",
        "《三体》是刘慈欣创作的长篇科幻小说。",
        "中华人民共和国网络安全法第二十一条规定日志保存不少于六个月。",
    ],
    "ja": [
        "こんにちは、世界！今日はいい天気ですね。",
        "東京都渋谷区でカタカナとひらがなを混ぜたテキスト。",
        "ディープラーニングのモデルをオンプレミスで運用する。",
        "ｶﾀｶﾅ半角とＡＢＣ全角の混在",
    ],
    "ko": [
        "안녕하세요, 세계! 오늘 날씨가 좋네요.",
        "대규모 언어 모델을 사내에 배포합니다.",
        "한국어 형태소 분석은 어렵습니다.",
    ],
    "ar": [
        "مرحبا بالعالم! كيف حالك اليوم؟",
        "النماذج اللغوية الكبيرة تعمل على وحدات معالجة الرسومات.",
        "اللُّغَةُ العَرَبِيَّةُ مع التشكيل",
    ],
    "hi": [
        "नमस्ते दुनिया! आप कैसे हैं?",
        "भारत में कृत्रिम बुद्धिमत्ता का उपयोग तेजी से बढ़ रहा है।",
        "क्षत्रिय, ज्ञान, श्रृंखला",
    ],
    "ru": [
        "Привет, мир! Как дела?",
        "Большие языковые модели работают на графических процессорах.",
    ],
    "th": ["สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ"],
    "misc": [
        "Ελληνικά: Καλημέρα κόσμε",
        "עברית: שלום עולם",
        "Tiếng Việt: Xin chào thế giới, mô hình ngôn ngữ",
        "Türkçe: İstanbul'da ışık, Iğdır",
        "Deutsch: Größe, Straße, Übermäßig",
        "Français: garçon, naïve, cœur, « guillemets »",
        "Español: ¿Qué tal? ¡Muy bien! mañana",
        "Polski: zażółć gęślą jaźń",
    ],
}

EMOJI = [
    "😀", "🤖", "🚀", "❤️", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳", "🇺🇸", "🇯🇵", "🧑🏿‍💻", "👩🏻‍🔬",
    "🫶🏼", "😶‍🌫️", "❤️‍🔥", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☺︎", "1️⃣", "#️⃣", "©", "™", "🀄", "🈶",
]

CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "const x = await fetch(`/api/${id}`);",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "#include <vector>\nint main() { std::vector<int> v{1,2,3}; }",
    "if x != None and y == 'a':\r\n    print(\"crlf\")\r\n",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "<div class=\"container\"><p>Hello &amp; welcome</p></div>",
    "λx.λy.x y  ∀x∈ℝ: x² ≥ 0  ∑_{i=1}^{n} i = n(n+1)/2",
    "    indented four spaces\n        eight spaces\n\t\ttwo tabs",
    "$ ./build/hearth model inspect models/tiny --json | jq .params",
    "git commit -m \"fix: handle CRLF\" && git push origin main",
]

NUMBERS = [
    "2026-11-28", "28/11/2026", "11:59:59.999", "3.14159265358979", "1,234,567.89", "-0.0001",
    "1e-9", "0x7FFFFFFF", "0b101010", "v1.2.3-rc.4", "¥850,000", "$1.21M", "€99", "100%", "12345678901234567890",
    "٠١٢٣٤٥٦٧٨٩", "１２３４５", "一二三四五", "Ⅻ", "½", "²³", "१२३",
]

SPECIALS = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>", "<|begin_of_text|>",
    "<|eot_id|>", "<|start_header_id|>", "<｜tool▁calls▁begin｜>", "<｜tool▁sep｜>", "<|fim_prefix|>",
    "<｜place▁holder▁no▁7｜>", "<|reserved_special_token_5|>", "<|im_start", "im_start|>", "<｜User", "<<|im_end|>>",
]

WS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t \t", "\u3000", "\u00a0", "\u2003", "\n\n\n\n",
      "    ", " \r\n\r\n ", "\u2028", "\u200b", "\f", "\v"]

# Characters on which JavaScript's \s differs from Oniguruma's (HF): U+0085 is White_Space for
# Oniguruma but not JS; U+FEFF and U+180E the other way round. Lines with them go to the HF-only set.
JS_DIVERGENT = ["\u0085", "\ufeff", "\u180e"]

BLOCKS = [
    (0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
    (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2190, 0x21FF),
    (0x2200, 0x22FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x30FF), (0x4E00, 0x9FA5), (0x9FA6, 0x9FFF),
    (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F300, 0x1F5FF),
    (0x1F600, 0x1F64F), (0x1F900, 0x1F9FF), (0x20000, 0x2A6DF), (0x1D400, 0x1D7FF), (0xE0020, 0xE007F),
]


def random_codepoints(rng, n):
    out = []
    while len(out) < n:
        lo, hi = rng.choice(BLOCKS)
        cp = rng.randint(lo, hi)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        out.append(chr(cp))
    return "".join(out)


def all_seed_sentences():
    return [s for v in SEED_TEXT.values() for s in v]


def make(rng):
    lines = [""]
    sentences = all_seed_sentences()
    # 1. every seed item alone, and with leading/trailing whitespace variants
    for s in sentences + CODE + NUMBERS + SPECIALS + EMOJI:
        lines.append(s)
        lines.append(" " + s)
        lines.append(s + "\n")
    for w in WS:
        lines.append(w)
        lines.append("a" + w + "b")
        lines.append(w + "x" + w)
    # 2. random mixtures of pieces
    pools = [sentences, CODE, NUMBERS, SPECIALS, EMOJI, WS]
    weights = [6, 2, 2, 1, 2, 3]
    for _ in range(1300):
        k = rng.randint(1, 8)
        parts = []
        for _ in range(k):
            pool = rng.choices(pools, weights)[0]
            piece = rng.choice(pool)
            r = rng.random()
            if r < 0.1:
                piece = piece.upper()
            elif r < 0.2:
                piece = piece.lower()
            elif r < 0.3 and len(piece) > 4:
                a = rng.randint(0, len(piece) - 1)
                piece = piece[a:a + rng.randint(1, 12)]
            parts.append(piece)
        sep = rng.choice(["", " ", " ", "\n", "  ", "\t", "\r\n"])
        lines.append(sep.join(parts))
    # 3. random code points (many scripts), with whitespace and digits sprinkled in
    for _ in range(400):
        s = random_codepoints(rng, rng.randint(1, 40))
        if rng.random() < 0.5:
            pos = rng.randint(0, len(s))
            s = s[:pos] + rng.choice(WS + NUMBERS) + s[pos:]
        lines.append(s)
    # 4. combining marks stacked, ZWJ chains, variation selectors
    for _ in range(80):
        base = rng.choice("aeiouAEIOUnNcCzZ한字ا")
        marks = "".join(chr(rng.randint(0x300, 0x36F)) for _ in range(rng.randint(1, 6)))
        lines.append(base + marks + " " + rng.choice(sentences))
        lines.append("\u200d".join(rng.choice(EMOJI) for _ in range(rng.randint(2, 5))))
    # 5. numbers and dates in context
    for _ in range(120):
        lines.append(f"On {rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1900, 2100)} the value was "
                     f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 6)}f} ({rng.randint(0, 10**rng.randint(1, 15))} units)")
    # 6. long words and long runs
    for n in (100, 1000, 5000, 20000):
        lines.append("a" * n)
        lines.append("ab" * (n // 2))
        lines.append(" " * n + "x")
        lines.append("\n" * (n // 10) + "end")
        lines.append("字" * (n // 10))
        lines.append("1234567890" * (n // 10))
        lines.append("Supercalifragilisticexpialidocious" * (n // 100 + 1))
    lines.append("😀" * 500)
    lines.append("".join(rng.choice("abcdefghij ") for _ in range(3000)))
    # 7. special-token-like text without and with surrounding words
    for _ in range(100):
        lines.append(rng.choice(sentences) + rng.choice(SPECIALS) + rng.choice(sentences))
    # 8. contractions and casing (the (?i:'s|'t|...) branch)
    for w in ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'m", "'M", "'ll", "'LL", "'d", "'D", "'x"]:
        lines.append(f"it{w} ok{w}{w} '{w}")
    return lines


def main():
    rng = random.Random(20261128)
    lines = make(rng)
    common, hf_only = [], []
    for s in lines:
        (hf_only if any(c in s for c in JS_DIVERGENT) else common).append(s)
    # Lines exercising the JS/Oniguruma \s difference: reference only from HF tokenizers.
    for s in list(common[:200]):
        for c in JS_DIVERGENT:
            if rng.random() < 0.1:
                hf_only.append(s.replace(" ", c, 1) if " " in s else c + s)
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/tokenizer"
    with open(f"{out}/corpus.jsonl", "w", encoding="utf-8") as f:
        for s in common:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    with open(f"{out}/corpus_hf_only.jsonl", "w", encoding="utf-8") as f:
        for s in hf_only:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"{len(common)} common lines, {len(hf_only)} HF-only lines", file=sys.stderr)


if __name__ == "__main__":
    main()
