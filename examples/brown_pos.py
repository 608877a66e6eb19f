"""Part-of-speech tagging of the Brown corpus with a Transformer encoder.

Trains a Transformer encoder with a token-classification head
(`task="tag"`) on `brown/train.conll` (10% of the sentences held out for
validation) and reports token accuracy on `brown/test.conll` (every 10th of
the 500 Brown documents; 5,642 sentences), with the full Brown tagset (the
`-tl`/`-hl` title and headline variants included). Each word's tag is
predicted from its first WordPiece. Reference: tagging each word with its
most frequent training tag (unknown words: the most frequent tag overall)
reaches 87.2%; the target is 95% or more.

    .venv/bin/python examples/brown_pos.py            # the full run (~30 min)
    .venv/bin/python examples/brown_pos.py --quick    # a smoke run (~2 min)

Sentences longer than `sequence_length` pieces are truncated by keraslm and
their cut-off words drop out of its accuracy; `accuracy_every_word` here
counts such words as wrong, so it is over every test token.
"""

import collections

import _common

NAME = "brown_pos"

FULL = dict(
    tokenizer="wordpiece", vocabulary_size=16000, lowercase=False,
    sequence_length=96, model="transformer_encoder", preset=None,
    model_options=dict(num_layers=3, num_heads=4, hidden_dim=128,
                       intermediate_dim=512, max_sequence_length=96),
    head_options=dict(dropout=0.1), batch_size=32, learning_rate=1e-3,
    schedule="warmup_linear", epochs=3, checkpoint_every=500,
)
QUICK = dict(
    FULL, vocabulary_size=4000, sequence_length=64,
    model_options=dict(num_layers=1, num_heads=2, hidden_dim=64,
                       intermediate_dim=128, max_sequence_length=64),
    steps=60, checkpoint_every=30,
)


def read_conll(path):
    sentences, current = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line:
                current.append(line.split("\t"))
            elif current:
                sentences.append(current)
                current = []
    return sentences + ([current] if current else [])


def most_frequent_tag(train_path, test_path):
    """The reference (as in reference_baselines.py): per lowercased word."""
    counts, tags = collections.defaultdict(collections.Counter), collections.Counter()
    for sentence in read_conll(train_path):
        for word, tag in sentence:
            counts[word.lower()][tag] += 1
            tags[tag] += 1
    default = tags.most_common(1)[0][0]
    test = [token for sentence in read_conll(test_path) for token in sentence]
    correct = sum((counts[word.lower()].most_common(1)[0][0]
                   if word.lower() in counts else default) == tag for word, tag in test)
    unknown = sum(word.lower() not in counts for word, _ in test)
    return {"accuracy": round(correct / len(test), 4), "test_tokens": len(test),
            "test_tokens_unseen_in_train": unknown, "tags_in_train": len(tags)}


def main():
    arguments = _common.parser(NAME, __doc__.splitlines()[0])
    arguments.add_argument("--epochs", type=float, default=None,
                           help="override the number of epochs")
    args = arguments.parse_args()

    import keraslm

    train_path = _common.data_file(args, "brown", "train.conll")
    test_path = _common.data_file(args, "brown", "test.conll")
    options = dict(QUICK if args.quick else FULL)
    if args.epochs:
        options["epochs"] = args.epochs
    run_dir = _common.run_directory(args, NAME)

    with _common.Timer() as timer:
        result = keraslm.train(task="tag", train=train_path, test=test_path,
                               output_dir=run_dir, seed=args.seed, **options)

    reference = most_frequent_tag(train_path, test_path)
    test = _common.rounded(result.metrics.get("test"))
    all_words = reference["test_tokens"]
    scored = test.get("words", 0)
    test["test_tokens"] = all_words
    test["accuracy_every_word"] = round(test.get("accuracy", 0.0) * scored / all_words, 4)
    _common.write_results(args, NAME, {
        "run_dir": result.run_dir,
        "data": {"train": train_path, "test": test_path,
                 "validation": "10% of train.conll sentences held out (seed 0)"},
        "hyperparameters": _common.hyperparameters(result.config),
        "parameters": int(result.model.count_params()),
        "time": timer.as_dict(),
        "test": test,
        "test_best_checkpoint": _common.evaluate_checkpoint(result.run_dir, test_path),
        "validation_final": _common.rounded(result.metrics.get("final")),
        "validation_best_checkpoint": _common.rounded(result.metrics.get("best")),
        "reference": {"most_frequent_tag": reference, "computed": True},
        "target": {"test_accuracy_at_least": 0.95},
        "target_met": bool(test["accuracy_every_word"] >= 0.95),
    })


if __name__ == "__main__":
    main()
