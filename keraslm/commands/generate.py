"""`keraslm generate RUN_DIR --prompt TEXT`: continue (lm) or translate (translate) text.

```bash
keraslm generate runs/lm --prompt "ROMEO:" --sampler top_k --max-new-tokens 200
keraslm generate runs/mt --prompt "In the beginning God created"   # greedy
```
"""

from keraslm.commands._run_dir import configure_run_dir


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--sampler", default="top_k",
                        help="greedy, top_k, top_p or random")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    from keraslm import registry
    from keraslm.training import RunDirectory, TrainConfig, load_task

    run_dir = RunDirectory(args.run_dir)
    config = TrainConfig.from_run(run_dir.path)
    task = load_task(run_dir.path, config)
    if not task.decodes:
        decoding = sorted(c.name for c in registry.tasks if c.load().decodes)
        raise ValueError(f"generate needs a run of a task that decodes "
                         f"({', '.join(decoding)}). Received a run of task "
                         f"{config.task!r}.")
    model, tokenizer = run_dir.load_model(args.checkpoint), run_dir.load_tokenizer()
    print(task.generate(model, tokenizer, args.prompt, args.max_new_tokens,
                        sampler=args.sampler, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p, seed=args.seed))
    return 0
