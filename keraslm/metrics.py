"""Metrics registered by keraslm."""


def perplexity(from_logits=True, mask_token_id=0, **kwargs):
    """Perplexity, `exp` of the mean token cross-entropy, padding ignored.

    Wraps `keras_hub.metrics.Perplexity`.

    Example:

    ```python
    metric = keraslm.registry.metrics.build("perplexity")
    metric.update_state(y_true, logits)
    float(metric.result())
    ```
    """
    import keras_hub

    return keras_hub.metrics.Perplexity(from_logits=from_logits,
                                        mask_token_id=mask_token_id, **kwargs)
