"""`keraslm generate RUN_DIR --prompt TEXT | --input FILE`: continue (lm) or translate (translate) text.

With `--input`, each line of FILE is one prompt and each prompt gives one
line of output, in order (decoded in batches of `--batch-size`; a newline
inside an output is written as the two characters `\\n`).

```bash
keraslm generate runs/lm --prompt "ROMEO:" --sampler top_k --max-new-tokens 200
keraslm generate runs/lm --input prompts.txt --num-beams 4 --no-repeat-ngram-size 3
keraslm generate runs/lm --prompt "ROMEO:" --repetition-penalty 1.3 --stop "\\n\\n"
keraslm generate runs/mt --prompt "In the beginning God created"   # greedy
keraslm generate runs/mt --input sources.txt --num-beams 4 > translations.txt
```
"""

from keraslm.commands._run_dir import configure_run_dir


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--prompt", default=None, help="text to continue")
    parser.add_argument("--input", default=None, metavar="FILE",
                        help="one prompt per line; one output line per prompt")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="prompts of --input decoded together")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--sampler", default=None,
                        help="greedy, top_k, top_p or random (default: top_k for "
                             "lm runs, greedy for translate runs and with --num-beams)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-beams", type=int, default=None,
                        help="beam search with this many beams")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="beam search: score / length ** this")
    parser.add_argument("--repetition-penalty", type=float, default=1.0,
                        help="> 1 discourages ids already in the text (1.0: off)")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=0,
                        help="no n-gram of this size twice (0: off)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="stop a row where TEXT appears (repeatable; "
                             "escapes such as \\n are read)")


def decoding_options(args):
    """The decoding keyword arguments of `args`, checked
    (`keraslm.generation.check_options`) before any model is loaded."""
    from keraslm import generation

    sampler = args.sampler or ("greedy" if args.num_beams is not None else "top_k")
    options = dict(sampler=sampler, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed,
                   repetition_penalty=args.repetition_penalty,
                   no_repeat_ngram_size=args.no_repeat_ngram_size)
    if args.num_beams is not None:
        options.update(num_beams=args.num_beams, length_penalty=args.length_penalty)
    generation.check_options(max_new_tokens=args.max_new_tokens, **options)
    stops = [text.encode("utf-8").decode("unicode_escape") for text in args.stop]
    if any(not text for text in stops):
        raise ValueError(f"`--stop` must be a non-empty text. Received: --stop={args.stop!r}")
    if stops:
        options["stop"] = stops
    return options


def read_prompts(args):
    """The lines of `--input`, or None for `--prompt`."""
    if args.input is not None and args.prompt is not None:
        raise ValueError(f"Give --prompt or --input, not both. Received: "
                         f"--prompt={args.prompt!r}, --input={args.input!r}")
    if args.batch_size < 1:
        raise ValueError(f"`--batch-size` must be an integer >= 1. "
                         f"Received: --batch-size={args.batch_size}")
    if args.input is None:
        return None
    with open(args.input, encoding="utf-8") as handle:
        return handle.read().splitlines()


def run(args):
    from keraslm import registry
    from keraslm.tasks.base import Task
    from keraslm.training import RunDirectory, TrainConfig, load_task

    options = decoding_options(args)
    prompts = read_prompts(args)
    run_dir = RunDirectory(args.run_dir)
    config = TrainConfig.from_run(run_dir.path)
    task = load_task(run_dir.path, config)
    if not task.decodes:
        decoding = sorted(c.name for c in registry.tasks if c.load().decodes)
        raise ValueError(f"generate needs a run of a task that decodes "
                         f"({', '.join(decoding)}). Received a run of task "
                         f"{config.task!r}.")
    if args.sampler is None and args.num_beams is None:
        options["sampler"] = task.default_sampler
    model, tokenizer = run_dir.load_model(args.checkpoint), run_dir.load_tokenizer()
    if prompts is None:
        if type(task).generate is not Task.generate:  # translate: printed when done
            print(task.generate(model, tokenizer, args.prompt or "", args.max_new_tokens,
                                **options))
            return 0
        prompt = args.prompt or ""
        show = Streamer(prompt)
        text = task.generate(model, tokenizer, prompt, args.max_new_tokens,
                             stream=show, **options)
        show.finish(text)
        return 0
    # Tasks whose `generate` takes a list (the built-in ones) get batches;
    # a plugin's `generate` that takes one text gets one at a time.
    batched = getattr(type(task), "generates_batches", type(task).generate is Task.generate)
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start:start + args.batch_size]
        if batched:
            outputs = task.generate(model, tokenizer, chunk, args.max_new_tokens, **options)
        else:
            outputs = [task.generate(model, tokenizer, text, args.max_new_tokens, **options)
                       for text in chunk]
        for text in outputs:
            print(text.replace("\n", "\\n"), flush=True)
    return 0


class Streamer:
    """Prints a single prompt's continuation as it grows (`stream=` of
    `keraslm.generation.generate`): the prompt at once, then each new
    piece of text. If decoding more ids changed text already printed (a
    tokenizer that merges pieces), `finish` prints the whole result again
    on a new line, so the last text printed is always the result."""

    def __init__(self, prompt, file=None):
        import sys

        self.file = file or sys.stdout
        self.prompt, self.shown, self.broken = prompt, "", False
        self.file.write(prompt)
        self.file.flush()

    def __call__(self, texts):
        text = texts[0]
        if self.broken:
            return
        if not text.startswith(self.shown):
            self.broken = True
            return
        self.file.write(text[len(self.shown):])
        self.file.flush()
        self.shown = text

    def finish(self, result):
        if self.broken or self.prompt + self.shown != result:
            self.file.write("\n" + result)
        self.file.write("\n")
        self.file.flush()
