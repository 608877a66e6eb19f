"""Each schedule's learning-rate curve against its formula."""

import numpy as np
import pytest

from keraslm import registry

STEPS = np.arange(0, 120)


def curve(schedule):
    return np.array([float(schedule(int(s))) for s in STEPS])


def test_step():
    schedule = registry.schedules.build("step", learning_rate=0.1, step_size=25, gamma=0.5)
    np.testing.assert_allclose(curve(schedule), 0.1 * 0.5 ** (STEPS // 25), rtol=1e-6)


def test_exponential():
    schedule = registry.schedules.build("exponential", learning_rate=0.1,
                                        decay_steps=30, decay_rate=0.7)
    np.testing.assert_allclose(curve(schedule), 0.1 * 0.7 ** (STEPS / 30), rtol=1e-5)


def test_cosine_annealing():
    schedule = registry.schedules.build("cosine", learning_rate=0.2, decay_steps=100,
                                        alpha=0.05)
    progress = np.minimum(STEPS, 100) / 100
    expected = 0.2 * ((1 - 0.05) * 0.5 * (1 + np.cos(np.pi * progress)) + 0.05)
    np.testing.assert_allclose(curve(schedule), expected, rtol=1e-5)


def test_warmup_linear():
    schedule = registry.schedules.build("warmup_linear", learning_rate=1e-3,
                                        warmup_steps=20, decay_steps=80,
                                        end_learning_rate=1e-4)
    expected = np.where(
        STEPS < 20, 1e-3 * STEPS / 20,
        1e-3 + (1e-4 - 1e-3) * np.clip((STEPS - 20) / 80, 0, 1))
    np.testing.assert_allclose(curve(schedule), expected, rtol=1e-5, atol=1e-10)
    assert curve(schedule).argmax() == 20


def test_schedule_drives_an_optimizer():
    schedule = registry.schedules.build("step", learning_rate=0.1, step_size=2, gamma=0.5)
    optimizer = registry.optimizers.build("sgd", learning_rate=schedule)
    import keras

    variable = keras.Variable(np.zeros(1, "float32"))
    for _ in range(4):
        optimizer.apply([np.ones(1, "float32")], [variable])
    # steps 0,1 at 0.1; steps 2,3 at 0.05
    np.testing.assert_allclose(variable.numpy(), [-(0.1 + 0.1 + 0.05 + 0.05)], rtol=1e-6)


def test_global_norm_clipping():
    import keras

    optimizer = registry.optimizers.build("sgd", learning_rate=1.0, global_clipnorm=1.0)
    a, b = keras.Variable(np.zeros(1, "float32")), keras.Variable(np.zeros(1, "float32"))
    optimizer.apply([np.array([3.0], "float32"), np.array([4.0], "float32")], [a, b])
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0]], [-0.6, -0.8], rtol=1e-6)


@pytest.mark.parametrize("name, kwargs, message", [
    ("step", {"step_size": 0}, "Received: step_size=0"),
    ("warmup_linear", {"warmup_steps": 2.5}, "Received: warmup_steps=2.5"),
    ("cosine", {"decay_steps": -3}, "Received: decay_steps=-3"),
])
def test_bad_arguments_are_explained(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        registry.schedules.build(name, **kwargs)



def test_warmup_linear_round_trips_through_keras_serialization():
    import keras

    schedule = registry.schedules.build("warmup_linear", learning_rate=1e-3,
                                        warmup_steps=20, decay_steps=80)
    config = keras.optimizers.schedules.serialize(schedule)
    restored = keras.optimizers.schedules.deserialize(config)
    np.testing.assert_allclose(curve(restored), curve(schedule))
    # A config written when the class lived in keraslm.optimizers still loads.
    old = keras.optimizers.schedules.deserialize({**config, "module": "keraslm.optimizers"})
    np.testing.assert_allclose(curve(old), curve(schedule))
