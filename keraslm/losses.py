"""Losses for language-model tasks."""

import keras
from keras import ops

_TF_KERNELS = {}


def _tf_kernels(label_smoothing):
    """XLA-compiled forward and backward of the sparse cross-entropy (TF),
    one pair per `label_smoothing` value (without smoothing the forward skips
    the mean over the vocabulary).

    Built on first use so that importing this module never loads TensorFlow.
    """
    if label_smoothing in _TF_KERNELS:
        return _TF_KERNELS[label_smoothing]
    import tensorflow as tf

    @tf.function(jit_compile=True, autograph=False)
    def forward(logits, labels):
        x = tf.cast(logits, tf.float32)
        top = tf.stop_gradient(tf.reduce_max(x, axis=-1, keepdims=True))
        lse = tf.math.log(tf.reduce_sum(tf.exp(x - top), axis=-1, keepdims=True)) + top
        picked = tf.gather(x, labels[..., None], batch_dims=labels.shape.rank)[..., 0]
        nll = lse[..., 0] - picked
        if label_smoothing:
            smooth = lse[..., 0] - tf.reduce_mean(x, axis=-1)
            nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        return nll, lse

    @tf.function(jit_compile=True, autograph=False)
    def backward(logits, labels, lse, upstream):
        x = tf.cast(logits, tf.float32)
        depth = tf.shape(x)[-1]
        target = (1.0 - label_smoothing) * tf.one_hot(labels, depth) + (
            label_smoothing / tf.cast(depth, tf.float32))
        grad = (tf.exp(x - lse) - target) * upstream[..., None]
        return tf.cast(grad, logits.dtype)

    @tf.custom_gradient
    def nll(logits, labels):
        value, lse = forward(logits, labels)

        def grad(upstream):
            return backward(logits, labels, lse, upstream), None

        return value, grad

    _TF_KERNELS[label_smoothing] = nll
    return nll


def _in_xla_context(tf):
    """Whether the graph being built is compiled by XLA as a whole."""
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # private module moved: use the kernels
        return False
    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


def sparse_crossentropy_from_logits(labels, logits, label_smoothing=0.0):
    """Per-position cross-entropy of integer `labels` under `logits`, float32.

    `-log softmax(logits)[label]`, mixed with the uniform target when
    `label_smoothing > 0`: `(1 - e) * nll + e * (logsumexp - mean(logits))`.
    Labels must lie in `[0, vocabulary_size)`; map ignored labels to 0 first
    and zero their losses afterwards (their gradient is then zero too).

    On TensorFlow, in a graph that is not compiled by XLA as a whole (Keras'
    `jit_compile=False`, keraslm's `xla="fusible"`), the forward and backward
    passes are each one XLA-compiled kernel with a hand-written gradient,
    `softmax - target`, so the full `(batch, length, vocabulary)`
    log-probabilities are never stored: about 3x faster than
    `tf.nn.sparse_softmax_cross_entropy_with_logits` and 6x faster than
    `log_softmax` + gather on a CPU (see `benchmarks/train_throughput.py`).
    Inside a `jit_compile=True` function it uses TensorFlow's fused op, as
    Keras does. Labels outside the vocabulary raise an error, except inside
    a `jit_compile=True` function, where TensorFlow drops the check (as it
    does for `tf.gather`). Other backends compute the same formula with
    `keras.ops`.

    Args:
        labels: int tensor `(...,)`.
        logits: float tensor `(..., vocabulary_size)`, any float dtype.
        label_smoothing: float in `[0, 1)`.

    Returns:
        float32 tensor of shape `labels.shape`.

    Example:

    ```python
    logits = np.random.randn(2, 5, 100).astype("float32")
    labels = np.random.randint(0, 100, (2, 5))
    keraslm.losses.sparse_crossentropy_from_logits(labels, logits)  # (2, 5)
    ```
    """
    if keras.backend.backend() != "tensorflow":
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        nll = -ops.squeeze(
            ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1), -1)
        if label_smoothing:
            nll = ((1.0 - label_smoothing) * nll
                   - label_smoothing * ops.mean(log_probs, axis=-1))
        return nll
    import tensorflow as tf

    label_smoothing = float(label_smoothing)
    labels = tf.cast(labels, tf.int32)
    depth = tf.shape(logits)[-1]
    checks = [tf.debugging.assert_non_negative(
                  labels, message="Labels must be >= 0 (ignored labels excepted)"),
              tf.debugging.assert_less(
                  labels, depth,
                  message="Labels must be smaller than the number of classes "
                          "(the last dimension of the logits)")]
    with tf.control_dependencies(checks):
        labels = tf.identity(labels)
    if _in_xla_context(tf):
        # Inside a function that XLA compiles whole (`jit_compile=True`),
        # TensorFlow's fused op is never slower: the hand-written gradient
        # made an XLA-compiled LSTM LM step 20% slower (a Transformer's 3%
        # faster), see `benchmarks/train_throughput.py`.
        x = tf.cast(logits, tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, x)
        if label_smoothing:
            smooth = tf.reduce_logsumexp(x, axis=-1) - tf.reduce_mean(x, axis=-1)
            nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        return nll
    return _tf_kernels(label_smoothing)(logits, labels)


def _labels(y_true, y_pred, ignore_class):
    """`(labels, valid)`: int32 labels shaped like `y_pred` without its last
    axis, ignored ones read as class 0; `valid` is None when nothing is
    ignored."""
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    if ignore_class is None:
        return y_true, None
    valid = ops.not_equal(y_true, ignore_class)
    return ops.where(valid, y_true, ops.zeros_like(y_true)), valid


def _log_probs(y_true, y_pred, from_logits, ignore_class):
    """`(log_probs, log_prob_of_label, valid)` in float32.

    `valid` is None when nothing is ignored; ignored labels read class 0 (their
    loss is zeroed by the caller).
    """
    labels, valid = _labels(y_true, y_pred, ignore_class)
    y_pred = ops.cast(y_pred, "float32")
    if from_logits:
        log_probs = ops.log_softmax(y_pred, axis=-1)
    else:
        log_probs = ops.log(ops.clip(y_pred, 1e-7, 1.0))
    label_log_prob = ops.squeeze(
        ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1), axis=-1)
    return log_probs, label_log_prob, valid


def _share_of_real_tokens(valid):
    """`replicas * local / global` real-token count under `tf.distribute`,
    else 1.

    Keras averages a masked loss over each replica's own real tokens, then
    scales it by 1/replicas: when replicas hold different numbers of real
    tokens (padding), the sum over replicas is not the mean over all real
    tokens of the global batch, and two replicas do not equal one device.
    Scaling each token's loss by this factor (a constant for the gradient)
    makes each replica's share `sum(local loss) / global count`, which sums
    to the global mean.
    """
    if keras.backend.backend() != "tensorflow":
        return 1.0
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1.0
    local = tf.reduce_sum(tf.cast(valid, "float32"))
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    share = context.num_replicas_in_sync * local / tf.maximum(total, 1.0)
    return tf.stop_gradient(tf.cast(share, "float32"))



@keras.saving.register_keras_serializable(package="keraslm")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse cross-entropy averaged over real tokens only.

    Positions whose label equals `ignore_class` (the padding id by default)
    contribute nothing, and the mean is taken over the remaining positions, so
    the loss of a batch does not depend on how much padding it has. The
    log-softmax is computed in float32 even under mixed precision.

    Args:
        from_logits: bool. Whether `y_pred` holds logits (`True`) or
            probabilities. Defaults to `True`.
        ignore_class: int or None. Label value to ignore. Defaults to `0`
            (keraslm's padding id); use `-100` for token classification.
        label_smoothing: float in [0, 1). Mixes the one-hot target with a
            uniform distribution over the vocabulary. Defaults to `0.0`.
        reduction: str. As in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"` (the mean over real tokens).
        name: str. Defaults to `"masked_sparse_categorical_crossentropy"`.

    Example:

    ```python
    loss = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy")
    y_true = np.array([[5, 2, 0, 0]])            # two real tokens, two pads
    y_pred = np.random.randn(1, 4, 8).astype("float32")
    loss(y_true, y_pred)
    ```
    """

    def __init__(self, from_logits=True, ignore_class=0, label_smoothing=0.0,
                 reduction="sum_over_batch_size",
                 name="masked_sparse_categorical_crossentropy", dtype=None):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        if self.from_logits:
            labels, valid = _labels(y_true, y_pred, self.ignore_class)
            nll = sparse_crossentropy_from_logits(labels, y_pred,
                                                  self.label_smoothing)
        else:
            log_probs, label_log_prob, valid = _log_probs(
                y_true, y_pred, self.from_logits, self.ignore_class)
            nll = -label_log_prob
            if self.label_smoothing:
                smooth = -ops.mean(log_probs, axis=-1)
                nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
        if valid is not None:
            nll = ops.where(valid, nll, ops.zeros_like(nll))
            if self.reduction == "sum_over_batch_size":
                nll = nll * _share_of_real_tokens(valid)
            keras.src.backend.set_keras_mask(nll, valid)
        return nll

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "label_smoothing": self.label_smoothing,
        }


def label_smoothed_crossentropy(label_smoothing=0.1, **kwargs):
    """`MaskedSparseCategoricalCrossentropy` with `label_smoothing=0.1` by default.

    Example:

    ```python
    loss = keraslm.registry.losses.build("label_smoothed_crossentropy")
    ```
    """
    return MaskedSparseCategoricalCrossentropy(
        label_smoothing=label_smoothing,
        name=kwargs.pop("name", "label_smoothed_crossentropy"), **kwargs)


@keras.saving.register_keras_serializable(package="keraslm")
class SparseFocalLoss(keras.losses.Loss):
    """Focal loss on integer labels, for imbalanced classes or tokens.

    `FL = -alpha * (1 - p_t) ** gamma * log(p_t)`, where `p_t` is the
    probability of the true class: well-classified examples are down-weighted
    so training concentrates on hard ones. `gamma=0, alpha=1` is plain
    cross-entropy. Labels equal to `ignore_class` are left out of the mean.

    Args:
        gamma: float >= 0. Focusing parameter. Defaults to `2.0`.
        alpha: float > 0. Constant weight. Defaults to `1.0`.
        from_logits: bool. Defaults to `True`.
        ignore_class: int or None. Label to ignore. Defaults to `None`.

    Example:

    ```python
    loss = keraslm.registry.losses.build("focal", gamma=2.0)
    loss(np.array([0, 1]), np.array([[2.0, -1.0], [0.5, 0.2]]))
    ```

    References:
        - [Lin et al., 2017](https://arxiv.org/abs/1708.02002)
    """

    def __init__(self, gamma=2.0, alpha=1.0, from_logits=True, ignore_class=None,
                 reduction="sum_over_batch_size", name="focal", dtype=None):
        if float(gamma) < 0:
            raise ValueError(f"`gamma` must be >= 0. Received: gamma={gamma}")
        if float(alpha) <= 0:
            raise ValueError(f"`alpha` must be > 0. Received: alpha={alpha}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.from_logits = from_logits
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        _, log_pt, valid = _log_probs(y_true, y_pred, self.from_logits,
                                      self.ignore_class)
        loss = -self.alpha * ops.power(1.0 - ops.exp(log_pt), self.gamma) * log_pt
        if valid is not None:
            loss = ops.where(valid, loss, ops.zeros_like(loss))
            keras.src.backend.set_keras_mask(loss, valid)
        return loss

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha,
                "from_logits": self.from_logits, "ignore_class": self.ignore_class}


@keras.saving.register_keras_serializable(package="keraslm")
class InfoNCE(keras.losses.Loss):
    """Contrastive InfoNCE loss with in-batch negatives.

    `y_pred` has shape `(batch, 2, dim)`: row `i` holds an anchor embedding
    and its positive. Every other positive in the batch is a negative for
    anchor `i`. Embeddings are L2-normalized, similarities are divided by
    `temperature`, and the loss is the cross-entropy of picking the right
    positive (the diagonal); `symmetric=True` averages it with the
    positive-to-anchor direction (as in CLIP). `y_true` is ignored.

    Args:
        temperature: float > 0. Defaults to `0.05`.
        symmetric: bool. Defaults to `False`.

    Example:

    ```python
    loss = keraslm.registry.losses.build("infonce", temperature=0.1)
    pairs = np.random.randn(8, 2, 32).astype("float32")
    loss(None, pairs)
    ```

    References:
        - [van den Oord et al., 2018](https://arxiv.org/abs/1807.03748)
    """

    def __init__(self, temperature=0.05, symmetric=False,
                 reduction="sum_over_batch_size", name="infonce", dtype=None):
        if float(temperature) <= 0:
            raise ValueError("`temperature` must be > 0. "
                             f"Received: temperature={temperature}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = float(temperature)
        self.symmetric = symmetric

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:
            y_true = ops.zeros((ops.shape(y_pred)[0],), dtype="int32")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        if len(y_pred.shape) != 3 or (y_pred.shape[1] is not None
                                      and y_pred.shape[1] != 2):
            raise ValueError(
                "InfoNCE expects `y_pred` of shape (batch, 2, dim) holding "
                f"(anchor, positive) pairs. Received shape {y_pred.shape}."
            )
        y_pred = ops.cast(y_pred, "float32")
        anchors = y_pred[:, 0, :]
        positives = y_pred[:, 1, :]
        anchors = anchors / ops.maximum(ops.norm(anchors, axis=-1, keepdims=True), 1e-12)
        positives = positives / ops.maximum(
            ops.norm(positives, axis=-1, keepdims=True), 1e-12)
        logits = ops.matmul(anchors, ops.transpose(positives)) / self.temperature
        targets = ops.arange(ops.shape(logits)[0])
        loss = -ops.take_along_axis(ops.log_softmax(logits, axis=-1),
                                    targets[:, None], axis=-1)[:, 0]
        if self.symmetric:
            reverse = -ops.take_along_axis(ops.log_softmax(logits, axis=0),
                                           targets[None, :], axis=0)[0]
            loss = 0.5 * (loss + reverse)
        return loss

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "symmetric": self.symmetric}
