"""`keraslm generate`: `--input FILE` gives one output line per prompt, the
texts `keraslm.generation.generate` gives for the same options; bad option
values are refused before the run is even opened."""

import pytest

import shared_data
from keraslm import cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny character LM trained for a few steps on Shakespeare."""
    root = tmp_path_factory.mktemp("generate_cli")
    with open(shared_data.path("shakespeare", "train.txt"), encoding="utf-8") as handle:
        lines = handle.readlines()[20000:21500]
    (root / "train.txt").write_text("".join(lines), encoding="utf-8")
    (root / "run.toml").write_text(
        f'task = "lm"\ntrain = "{root / "train.txt"}"\ntokenizer = "character"\n'
        'steps = 4\nsequence_length = 16\nbatch_size = 8\nlearning_rate = 0.01\n'
        '[model_options]\nnum_layers = 1\nhidden_dim = 16\nnum_heads = 2\n'
        'intermediate_dim = 32\nmax_sequence_length = 64\n')
    path = str(root / "run")
    assert cli.main(["train", "--config", str(root / "run.toml"), "-o", path]) == 0
    return path


def test_input_file_gives_one_line_per_prompt(run_dir, tmp_path, capsys):
    from keraslm import generation
    from keraslm.training import load_run

    prompts = ["ROMEO:", "To be, or not", "KING"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    _, task, model, tokenizer = load_run(run_dir)
    # A stop string the first output contains, written with escapes (\n).
    plain = generation.generate(model, tokenizer, prompts[0], 12, sampler="greedy",
                                **task.generate_options())
    stop = plain[len(prompts[0]) + 3:len(prompts[0]) + 5]
    escaped = stop.encode("unicode_escape").decode("ascii")
    for flags, options in [
            (["--sampler", "greedy", "--stop", escaped, "--stop", "\\n\\n"],
             dict(sampler="greedy", stop=[stop, "\n\n"])),
            (["--num-beams", "2", "--no-repeat-ngram-size", "2",
              "--repetition-penalty", "1.5"],
             dict(sampler="greedy", num_beams=2, no_repeat_ngram_size=2,
                  repetition_penalty=1.5))]:
        capsys.readouterr()
        assert cli.main(["generate", run_dir, "--input", str(tmp_path / "prompts.txt"),
                         "--max-new-tokens", "12", "--batch-size", "2", *flags]) == 0
        printed = capsys.readouterr().out.splitlines()
        expected = [generation.generate(model, tokenizer, prompt, 12, **options,
                                        **task.generate_options())
                    for prompt in prompts]
        assert printed == [text.replace("\n", "\\n") for text in expected]
        assert all(text.startswith(prompt) for text, prompt in zip(printed, prompts))
        if "stop" in options:  # the first output was cut at the stop string
            assert len(printed[0]) < len(plain) and stop not in printed[0][len(prompts[0]):]


def test_a_single_prompt_streams_its_text_as_it_is_decoded(run_dir, capsys):
    """`stream=` gets growing continuations (the XLA loop every
    STOP_CHECK_EVERY ids, beam search once); its last call is the result;
    `keraslm generate --prompt` prints the prompt first and ends with the
    result."""
    from keraslm import generation
    from keraslm.commands.generate import Streamer
    from keraslm.training import load_run

    _, task, model, tokenizer = load_run(run_dir)
    prompt, steps = "ROMEO:", 40
    for options in (dict(sampler="greedy"), dict(sampler="top_k", seed=3),
                    dict(num_beams=2)):
        calls = []
        result = generation.generate(model, tokenizer, prompt, steps, **options,
                                     stream=calls.append, **task.generate_options())
        assert result == generation.generate(model, tokenizer, prompt, steps, **options,
                                             **task.generate_options())
        texts = [texts[0] for texts in calls]
        assert prompt + texts[-1] == result
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))
        if "num_beams" in options:
            assert len(calls) == 1
        else:  # one call per chunk of the loop, up to the stop
            new_ids = generation.generate_ids(
                model, tokenizer.encode(prompt), steps, **options,
                stop_ids=[tokenizer.eos_id],
                banned_ids=(tokenizer.pad_id, tokenizer.unk_id, tokenizer.mask_id))
            chunks = -(-max(len(new_ids), 1) // generation.api.STOP_CHECK_EVERY)
            assert len(calls) in (chunks, chunks + 1), (len(calls), len(new_ids))
            assert len(calls) > 1
        capsys.readouterr()
        flags = (["--num-beams", "2"] if "num_beams" in options else
                 ["--sampler", options["sampler"], "--seed", str(options.get("seed", 0)),
                  "--temperature", "1.0"])
        assert cli.main(["generate", run_dir, "--prompt", prompt, "--max-new-tokens",
                         str(steps), *flags]) == 0
        assert capsys.readouterr().out == result + "\n"
    # A tokenizer that changes printed text: the result is printed again.
    import io

    out = io.StringIO()
    streamer = Streamer("ab", file=out)
    streamer(["c"])
    streamer(["xd"])
    streamer.finish("abxd")
    assert out.getvalue() == "abc\nabxd\n"


@pytest.mark.parametrize("flags, message", [
    (["--num-beams", "0"], "`num_beams` must be None (no beam search) or an integer "
                           ">= 1. Received: num_beams=0"),
    (["--no-repeat-ngram-size", "-2"], "Received: no_repeat_ngram_size=-2"),
    (["--repetition-penalty", "0"], "Received: repetition_penalty=0.0"),
    (["--stop", ""], "`--stop` must be a non-empty text"),
    (["--num-beams", "3", "--sampler", "top_k"], "`sampler` must be 'greedy'"),
])
def test_bad_options_are_refused_before_the_run_is_read(tmp_path, capsys, flags, message):
    assert cli.main(["generate", str(tmp_path / "no_such_run"), "--prompt", "x",
                     *flags]) == 1
    assert message in capsys.readouterr().err
