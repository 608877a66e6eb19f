"""Named size presets for the model builders.

Parameter counts are given for `vocabulary_size=8192`; each builder's
docstring has the formula, and `tests/models/test_presets.py` checks the
counts against `model.count_params()`.
"""

PRESETS = {
    "transformer_lm": {
        # GPT-style decoder-only, tied input/output embeddings.
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=128,
                     intermediate_dim=512, max_sequence_length=256),
        "small": dict(num_layers=4, num_heads=4, hidden_dim=256,
                      intermediate_dim=1024, max_sequence_length=256),
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768,
                     intermediate_dim=3072, max_sequence_length=1024),
    },
    "transformer_encoder": {
        # BERT-style encoder.
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=128,
                     intermediate_dim=512, max_sequence_length=256),
        "small": dict(num_layers=4, num_heads=4, hidden_dim=256,
                      intermediate_dim=1024, max_sequence_length=512),
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768,
                     intermediate_dim=3072, max_sequence_length=512),
    },
    "seq2seq_transformer": {
        # Encoder-decoder; "base" is the base model of Vaswani et al.
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=128,
                     intermediate_dim=512, max_sequence_length=256),
        "small": dict(num_layers=3, num_heads=4, hidden_dim=256,
                      intermediate_dim=1024, max_sequence_length=256),
        "base": dict(num_layers=6, num_heads=8, hidden_dim=512,
                     intermediate_dim=2048, max_sequence_length=512),
    },
    "lstm_lm": {
        "tiny": dict(num_layers=1, hidden_dim=128, units=256),
        "small": dict(num_layers=2, hidden_dim=256, units=512),
        "base": dict(num_layers=2, hidden_dim=512, units=1024),
    },
}

PARAMETERS_AT_VOCABULARY_8192 = {
    # model.count_params() at vocabulary_size=8192 with default options;
    # tests/models/test_models.py checks them against the formulas in each
    # model's docstring.
    "transformer_lm": {"tiny": 1_478_144, "small": 5_322_240, "base": 92_133_888},
    "transformer_encoder": {"tiny": 1_478_144, "small": 5_387_776, "base": 91_740_672},
    "seq2seq_transformer": {"tiny": 3_022_848, "small": 9_723_904, "base": 52_527_104},
    "lstm_lm": {"tiny": 3_548_160, "small": 9_973_760, "base": 27_279_360},
}


def resolve(builder, preset, arguments):
    """Merges a preset with explicit arguments (explicit ones win).

    Raises:
        ValueError: unknown preset, naming the ones that exist.
    """
    from keraslm.registry import unknown_name_message

    merged = {}
    if preset is not None:
        presets = PRESETS[builder]
        if preset not in presets:
            raise ValueError(unknown_name_message(f"{builder} preset", preset, presets))
        merged.update(presets[preset])
    merged.update({k: v for k, v in arguments.items() if v is not None})
    return merged


def require(builder, arguments, names):
    missing = [name for name in names if arguments.get(name) is None]
    if missing:
        raise ValueError(
            f"{builder}() needs {', '.join(f'`{m}`' for m in missing)}: pass "
            f"them, or a `preset` ({', '.join(PRESETS[builder])}) that sets "
            "them (`vocabulary_size` always comes from your tokenizer)."
        )


TRANSFORMER_REQUIRED = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                        "intermediate_dim", "max_sequence_length")


def build(builder, model_class, preset, arguments, required, kwargs):
    """Resolves `preset` + `arguments`, checks `required`, builds the model."""
    arguments = resolve(builder, preset, arguments)
    require(builder, arguments, required)
    return model_class(**arguments, **kwargs)
