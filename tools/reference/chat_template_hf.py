#!/usr/bin/env python3
"""Renders the chat template conformance suite with Hugging Face transformers and writes
tests/fixtures/chat_templates/expected_hf.json (same shape as expected_lenml.json).

Run from the repository root on a host with transformers installed (no model weights needed; only
the tokenizer_config.json files of the npm tokenizer packages and the .jinja fixtures are read):

    python3 tools/reference/chat_template_hf.py [--npm-cache .cache/npm/node_modules] [--out PATH]

Each template is rendered through a real tokenizer object's apply_chat_template(tokenize=False):
a tiny tokenizers-backed PreTrainedTokenizerFast carrying the model's special tokens and chat
template. If that cannot be built, transformers' own render_jinja_template is used and the output
says so. `--emulate` renders with plain jinja2 configured the way transformers configures it
(for machines without transformers); its output names that engine and must not be committed as
expected_hf.json.
"""
import argparse
import copy
import json
import os
import sys

FIXTURES = os.path.join("tests", "fixtures", "chat_templates")


def token_content(tok):
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def load_suite(npm_cache):
    with open(os.path.join(FIXTURES, "conversations.json"), encoding="utf-8") as f:
        suite = json.load(f)
    templates = []
    for t in suite["templates"]:
        with open(os.path.join(npm_cache, t["config"]), encoding="utf-8") as f:
            config = json.load(f)
        source = config.get("chat_template")
        if "template" in t:
            with open(os.path.join(FIXTURES, t["template"]), encoding="utf-8") as f:
                source = f.read()
        special = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            value = token_content(config.get(key))
            if value is not None:
                special[key] = value
        templates.append((t["name"], source, special))
    return suite["cases"], templates


def transformers_renderer(source, special):
    import transformers
    version = transformers.__version__
    try:
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast
        vocab = {"<hearth-unk>": 0}
        backend = Tokenizer(WordLevel(vocab, unk_token="<hearth-unk>"))
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, **special)
        tok.chat_template = source

        def render(case):
            kwargs = copy.deepcopy(case.get("kwargs", {}))
            return tok.apply_chat_template(copy.deepcopy(case["messages"]), tools=copy.deepcopy(case.get("tools")),
                                           add_generation_prompt=case["add_generation_prompt"], tokenize=False,
                                           **kwargs)
        render(dict(messages=[{"role": "user", "content": "x"}], add_generation_prompt=True))
        return render, f"transformers {version} apply_chat_template(tokenize=False)"
    except Exception as e:  # fall back to the function apply_chat_template calls
        print(f"note: tokenizer-object path failed ({type(e).__name__}: {e}); using render_jinja_template",
              file=sys.stderr)
        from transformers.utils.chat_template_utils import render_jinja_template

        def render(case):
            kwargs = dict(special)
            kwargs.update(copy.deepcopy(case.get("kwargs", {})))
            out, _ = render_jinja_template(conversations=[copy.deepcopy(case["messages"])],
                                           tools=copy.deepcopy(case.get("tools")), chat_template=source,
                                           add_generation_prompt=case["add_generation_prompt"], **kwargs)
            return out[0]
        return render, f"transformers {version} render_jinja_template"


def emulated_renderer(source, special):
    import datetime
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):  # `{% generation %}...{% endgeneration %}` renders its body
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(source)

    def render(case):
        kwargs = dict(special)
        kwargs.update(copy.deepcopy(case.get("kwargs", {})))
        return template.render(messages=copy.deepcopy(case["messages"]), tools=copy.deepcopy(case.get("tools")),
                               documents=None, add_generation_prompt=case["add_generation_prompt"], **kwargs)
    return render, f"jinja2 {jinja2.__version__} emulating transformers (NOT transformers)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npm-cache", default=os.path.join(".cache", "npm", "node_modules"))
    ap.add_argument("--out", default=os.path.join(FIXTURES, "expected_hf.json"))
    ap.add_argument("--emulate", action="store_true", help="render with jinja2 instead of transformers")
    args = ap.parse_args()
    cases, templates = load_suite(args.npm_cache)
    results, engines = {}, {}
    rendered = errors = 0
    for name, source, special in templates:
        make = emulated_renderer if args.emulate else transformers_renderer
        render, engines[name] = make(source, special)
        results[name] = {}
        for case in cases:
            try:
                results[name][case["name"]] = {"output": render(case)}
                rendered += 1
            except Exception as e:
                results[name][case["name"]] = {"error": f"{type(e).__name__}: {e}"}
                errors += 1
    doc = {"generator": "tools/reference/chat_template_hf.py", "engines": engines, "results": results}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"rendered {rendered}, errors {errors} -> {args.out}")
    for name, engine in engines.items():
        print(f"  {name}: {engine}")


if __name__ == "__main__":
    main()
