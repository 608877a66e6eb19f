"""Character-level Transformer language model on Shakespeare.

Trains `transformer_lm` on `shakespeare/train.txt` (38 works) with
`valid.txt` (Macbeth, Twelfth Night) for validation, and reports bits per
character on `test.txt` (Hamlet, The Tempest): the total negative log
likelihood of the test text in nats, divided by its number of characters and
by ln 2, which does not depend on the tokenizer. Reference: xz, given the
training plays, compresses the test plays at 2.51 bits per character; the
target is 2.0 or less after at most 60 minutes of training on 2 CPU cores.

    .venv/bin/python examples/shakespeare_lm.py            # the full run (~1 h)
    .venv/bin/python examples/shakespeare_lm.py --quick    # a smoke run (~1-2 min)

keraslm's `lm` evaluation reads `.txt` files one line per example and skips
blank lines, so its `bits_per_character` leaves the newlines of blank lines
out of both the loss and the count. This script also scores the test file
with every line kept (an empty line is just its newline), which covers every
character of `test.txt`, as xz does: `bits_per_character_every_line`.
"""

import lzma
import math
import os

import _common

NAME = "shakespeare_lm"

# Chosen with short pilots on the 2-core machine (see examples/results/).
FULL = dict(
    tokenizer="character", vocabulary_size=256, sequence_length=256,
    model="transformer_lm", preset=None,
    model_options=dict(num_layers=4, num_heads=4, hidden_dim=192,
                       intermediate_dim=768, max_sequence_length=256),
    batch_size=32, learning_rate=2e-3, weight_decay=0.01, schedule="warmup_cosine",
    warmup_steps=100, steps=2000, checkpoint_every=400,
)
QUICK = dict(
    FULL, model_options=dict(num_layers=2, num_heads=2, hidden_dim=64,
                             intermediate_dim=256, max_sequence_length=128),
    sequence_length=128, batch_size=16, steps=150, warmup_steps=20,
    checkpoint_every=50,
)


def xz_bits_per_character(train_path, test_path):
    """The reference: extra xz bytes for the test text after the training text."""
    options = dict(format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    with open(train_path, "rb") as handle:
        train = handle.read()
    with open(test_path, "rb") as handle:
        test = handle.read()
    extra = len(lzma.compress(train + test, **options)) - len(lzma.compress(train, **options))
    return 8 * extra / len(test.decode("utf-8"))


def main():
    arguments = _common.parser(NAME, __doc__.splitlines()[0])
    arguments.add_argument("--steps", type=int, default=None,
                           help="override the number of optimizer steps")
    args = arguments.parse_args()

    import keraslm
    from keraslm.data import read_text
    from keraslm.training.tasks import LanguageModelTask

    train_path = _common.data_file(args, "shakespeare", "train.txt")
    valid_path = _common.data_file(args, "shakespeare", "valid.txt")
    test_path = _common.data_file(args, "shakespeare", "test.txt")
    options = dict(QUICK if args.quick else FULL)
    if args.steps:
        options["steps"] = args.steps
    run_dir = _common.run_directory(args, NAME)

    with _common.Timer() as timer:
        result = keraslm.train(task="lm", train=train_path, valid=valid_path,
                               test=test_path, output_dir=run_dir, seed=args.seed,
                               **options)

    # Every character of test.txt, blank lines included.
    every_line = read_text(test_path, keep_empty=True)
    full = LanguageModelTask(result.config).evaluate(result.model, every_line,
                                                     result.tokenizer)
    with open(test_path, encoding="utf-8") as handle:
        test_text = handle.read()
    vocabulary = set(result.tokenizer.get_vocabulary())
    unknown = sum(1 for character in test_text
                  if character != "\n" and character not in vocabulary)

    if args.quick:
        reference = {"xz_bits_per_character": 2.507, "computed": False}
    else:
        reference = {"xz_bits_per_character": round(
            xz_bits_per_character(train_path, test_path), 3), "computed": True}

    # Generation stops at the end-of-text id, which stands for a newline.
    prompt = "  Ham. To be, or not"
    try:
        sample = keraslm.generation.generate(
            result.model, result.tokenizer, prompt,
            options["model_options"]["max_sequence_length"] - len(prompt),
            sampler="top_k", top_k=5, seed=args.seed)
    except Exception as error:  # the numbers above matter more than a sample
        sample = f"generation failed: {type(error).__name__}: {error}"

    test = result.metrics.get("test", {})
    bpc = test.get("bits_per_character")
    _common.write_results(args, NAME, {
        "run_dir": result.run_dir,
        "data": {"train": train_path, "valid": valid_path, "test": test_path,
                 "test_characters": len(test_text),
                 "test_characters_not_in_vocabulary": unknown},
        "hyperparameters": _common.hyperparameters(result.config),
        "parameters": int(result.model.count_params()),
        "time": {**timer.as_dict(), "note": "keraslm.train() as a whole: data, "
                 "tokenizer, training, validation and test evaluation"},
        "test": {
            "bits_per_character": round(bpc, 4) if bpc is not None else None,
            "bits_per_character_every_line": round(full["bits_per_character"], 4),
            "perplexity_per_character": round(2 ** full["bits_per_character"], 4),
            "token_accuracy": round(test.get("accuracy", math.nan), 4),
            "characters_scored": test.get("characters"),
            "characters_scored_every_line": full["characters"],
        },
        "validation_final": _common.rounded(result.metrics.get("final")),
        "validation_best_checkpoint": _common.rounded(result.metrics.get("best")),
        "reference": reference,
        "target": {"bits_per_character_at_most": 2.0, "training_minutes_at_most": 60},
        "target_met": bool(bpc is not None and bpc <= 2.0
                           and full["bits_per_character"] <= 2.0
                           and timer.cpu_seconds_per_core <= 3600),
        "sample": sample,
    })


if __name__ == "__main__":
    main()
