"""Samples of a Shakespeare language model under several decoding settings.

Trains a character-level `transformer_lm` on `shakespeare/train.txt` within
`--minutes` (or uses the LM run given with `--run`), then continues the
same prompts (the first words of speeches in `valid.txt`) with greedy
decoding, greedy with a repetition penalty, greedy with no repeated
3-grams, top-k and top-p sampling, and 4-beam search, all batched. For each
setting it records the share of word 4-grams that repeat an earlier 4-gram
of the same sample (degenerate loops score high), the share of distinct
word bigrams, the decoding speed, and two samples; written to
`examples/results/decoding_samples.{json,md}`.

    .venv/bin/python examples/decoding_samples.py                 # ~10 min
    .venv/bin/python examples/decoding_samples.py --run runs/lm   # an existing lm run
    .venv/bin/python examples/decoding_samples.py --quick
"""

import os
import time

import _common

NAME = "decoding_samples"

SETTINGS = [
    ("greedy", dict(sampler="greedy")),
    ("greedy, repetition penalty 1.2", dict(sampler="greedy", repetition_penalty=1.2)),
    ("greedy, no repeated 3-grams (tokens)", dict(sampler="greedy", no_repeat_ngram_size=3)),
    ("top-k 40, temperature 0.8", dict(sampler="top_k", top_k=40, temperature=0.8, seed=0)),
    ("top-p 0.9, temperature 0.8", dict(sampler="top_p", top_p=0.9, temperature=0.8, seed=0)),
    ("4 beams, no repeated 3-grams", dict(num_beams=4, no_repeat_ngram_size=3)),
]
MODEL = dict(tokenizer="character", sequence_length=128, model="transformer_lm", preset=None,
             model_options=dict(num_layers=4, num_heads=4, hidden_dim=192,
                                intermediate_dim=768, max_sequence_length=512,
                                dropout=0.1, attention_dropout=0.0,
                                position_encoding="rotary"),
             batch_size=32, learning_rate=2e-3, schedule="warmup_cosine", warmup_steps=100,
             checkpoint_every=200, xla=True)


def word_ngrams(words, size):
    return [tuple(words[i:i + size]) for i in range(len(words) - size + 1)]


def repeat_rate(text, size=4):
    """Share of the word n-grams of `text` that occurred earlier in it."""
    grams = word_ngrams(text.split(), size)
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams) if grams else 0.0


def distinct_bigrams(text):
    grams = word_ngrams(text.split(), 2)
    return len(set(grams)) / len(grams) if grams else 0.0


def prompts_from(valid_path, count):
    """The first three words of the first `count` speeches (a line after a
    speaker's name line) of the validation plays."""
    with open(valid_path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle]
    prompts = []
    for name, line in zip(lines, lines[1:]):
        if name.strip().endswith(".") and len(name.split()) <= 3 and len(line.split()) >= 4:
            prompts.append(" ".join(line.split()[:3]))
        if len(prompts) == count:
            break
    return prompts


def main():
    arguments = _common.parser(NAME, __doc__.splitlines()[0])
    arguments.add_argument("--run", default=None, help="an lm run directory to sample from")
    arguments.add_argument("--minutes", type=float, default=8.0,
                           help="time budget of the training (without --run)")
    arguments.add_argument("--new-tokens", type=int, default=300)
    args = arguments.parse_args()

    import keraslm
    from keraslm.training import load_run

    valid_path = _common.data_file(args, "shakespeare", "valid.txt")
    if args.run:
        run_dir = args.run
    else:
        run_dir = _common.run_directory(args, NAME)
        options = dict(MODEL)
        if args.quick:
            options.update(model_options=dict(num_layers=1, num_heads=2, hidden_dim=32,
                                              intermediate_dim=64, max_sequence_length=512),
                           xla=False)
        keraslm.train(task="lm", train=_common.data_file(args, "shakespeare", "train.txt"),
                      valid=valid_path, output_dir=run_dir, seed=args.seed,
                      time_budget="1m" if args.quick else f"{args.minutes}m", **options)
    config, task, model, tokenizer = load_run(run_dir)
    prompts = prompts_from(valid_path, 8 if args.quick else 24)
    new_tokens = 60 if args.quick else args.new_tokens
    rows = []
    for name, options in SETTINGS:
        keraslm.generation.generate(model, tokenizer, prompts[:2], 8, newline_at_eos=True,
                                    **options)  # compile
        start = time.perf_counter()
        texts = keraslm.generation.generate(model, tokenizer, prompts, new_tokens,
                                            newline_at_eos=True, **options)
        seconds = time.perf_counter() - start
        continuations = [text[len(prompt):] for text, prompt in zip(texts, prompts)]
        produced = sum(len(tokenizer.encode(text)) for text in continuations)
        rows.append({
            "setting": name, "options": options,
            "repeated_word_4grams": round(sum(map(repeat_rate, continuations))
                                          / len(continuations), 4),
            "distinct_word_bigrams": round(sum(map(distinct_bigrams, continuations))
                                           / len(continuations), 4),
            "new_tokens_per_second": round(produced / seconds, 1),
            "samples": texts[:2],
        })
    final = __import__("json").load(open(os.path.join(run_dir, "metrics.json")))["final"]
    results = _common.write_results(args, NAME, {
        "run_dir": run_dir, "validation_bits_per_character": round(
            final["bits_per_character"], 4),
        "prompts": prompts, "new_tokens": new_tokens, "settings": rows})
    if not args.quick:
        lines = [f"# Decoding settings on a character Shakespeare LM "
                 f"({results['validation_bits_per_character']} bits/char on valid.txt)",
                 "", f"`{results['command']}`: {len(prompts)} prompts (the first words of "
                 f"speeches in valid.txt) × {new_tokens} characters, decoded as one batch.",
                 "", "| setting | repeated word 4-grams | distinct word bigrams | "
                 "new tokens/s |", "|---|---|---|---|"]
        lines += [f"| {r['setting']} | {r['repeated_word_4grams']:.3f} | "
                  f"{r['distinct_word_bigrams']:.3f} | {r['new_tokens_per_second']:.0f} |"
                  for r in rows]
        for row in rows:
            lines += ["", f"## {row['setting']}", "", "```text", row["samples"][0].strip(),
                      "```"]
        with open(os.path.join(_common.RESULTS, f"{NAME}.md"), "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
