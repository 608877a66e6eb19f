"""On the JAX backend (a subprocess: the backend is fixed at import),
decoding takes the step-by-step loop over the jitted decoder step: greedy
ids of a Transformer LM, an LSTM LM and an encoder-decoder equal the argmax
of full forward passes, for a left-padded batch and for beams of width 1."""

import json
import os
import subprocess
import sys

SCRIPT = r'''
import json
import numpy as np, keras, keraslm
from keraslm.generation import generate_ids
from keraslm.generation.translate import translate_ids
assert keras.backend.backend() == "jax"
keras.utils.set_random_seed(1)
prompts, steps = [[5, 7, 9], [4]], 8

def argmax_loop(model, prompt):
    ids = list(prompt)
    for _ in range(steps):
        last = np.array(model(np.array([ids], "int32"))[0, -1]); last[0] = -np.inf
        ids.append(int(last.argmax()))
    return ids[len(prompt):]

results = {}
for name, model in (
        ("transformer", keraslm.models.transformer_lm(
            vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=64)),
        ("lstm", keraslm.models.lstm_lm(vocabulary_size=50, units=16, hidden_dim=16))):
    results[name] = [generate_ids(model, prompts, steps),
                     generate_ids(model, prompts, steps, num_beams=1),
                     [argmax_loop(model, p) for p in prompts]]
s2s = keraslm.models.seq2seq_transformer(
    vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
    max_sequence_length=32, dropout=0.0)
def s2s_loop(source):
    target = [1]
    for _ in range(steps):
        last = np.array(s2s({"encoder_token_ids": np.array([source], "int32"),
                             "decoder_token_ids": np.array([target], "int32")})[0, -1])
        last[[0, 1]] = -np.inf
        token = int(last.argmax())
        if token == 2:
            break
        target.append(token)
    return target[1:]
sources = [[5, 9, 11, 2], [7, 2]]
results["seq2seq"] = [translate_ids(s2s, sources, steps, start_id=1, stop_id=2,
                                    banned_ids=(0, 1)),
                      translate_ids(s2s, sources, steps, start_id=1, stop_id=2,
                                    banned_ids=(0, 1), num_beams=1),
                      [s2s_loop(s) for s in sources]]
print("RESULTS " + json.dumps(results))
'''


def test_jax_decoding_equals_the_argmax_loop():
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [l for l in done.stdout.splitlines() if l.startswith("RESULTS ")]
    results = json.loads(line[len("RESULTS "):])
    for name, (loop, beam, reference) in results.items():
        assert loop == reference, name
        assert beam == reference, name
        assert sum(map(len, reference)) > 4, name
