import keras
from keras import ops

from keraslm.layers._utils import validate_positive_int

INT32_LIMIT = 2**31 - 1


@keras.saving.register_keras_serializable(package="keraslm")
class HashedNGramEmbedding(keras.layers.Layer):
    """Embeddings of the n-grams that end at each position, hashed to buckets.

    For each position `t` and each order `n` in `2..order`, the n-gram of
    token ids `x[t-n+1], ..., x[t]` is hashed to one of `num_buckets` rows
    of an embedding table; the layer returns, per position, the sum of the
    rows of the n-grams ending there: `(batch, length, output_dim)`. An
    n-gram that would reach before the first position or that contains a
    padding id (`0`) contributes zeros. Added to the token embeddings of a
    backbone, this gives the model word-pair features from the first layer;
    mean-pooled with no Transformer layer, it is the bigram bag of fastText
    (Joulin et al., 2017), which is strong for short-text classification.
    It only looks backwards, so it is causal.

    The hash is exact integer arithmetic in int32, the same on every backend
    and in exported graphs: `h = x[t-n+1]`, then `h = (h * V + x) mod B` for
    each later token (`V` is `vocabulary_size`, `B` is `num_buckets`). It
    needs `V * V < 2**31` and, for `order >= 3`, `B * V < 2**31`; larger
    values are refused rather than left to overflow.

    Args:
        vocabulary_size: int. The number of token ids (ids are in `[0, V)`).
        num_buckets: int. The number of rows of the n-gram table.
        output_dim: int. The size of each embedding vector.
        order: int. The longest n-gram, at least 2. Defaults to `2`
            (bigrams).
        embeddings_initializer: string or `keras.initializers` initializer.
            Defaults to `"uniform"` (as `keras.layers.Embedding`).
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: int tensor of token ids `(batch_size, length)`; `0` is padding.

    Example:

    ```python
    import numpy as np
    import keraslm

    bigrams = keraslm.layers.HashedNGramEmbedding(
        vocabulary_size=100, num_buckets=1000, output_dim=16)
    features = bigrams(np.array([[5, 7, 9, 0]]))  # (1, 4, 16)
    # position 0 and the padding position are zeros; position 1 is the row
    # of bucket (5 * 100 + 7) % 1000, position 2 that of (7 * 100 + 9) % 1000.
    ```

    References:
     - [Joulin et al., 2017](https://arxiv.org/abs/1607.01759)
    """

    def __init__(self, vocabulary_size, num_buckets, output_dim, order=2,
                 embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        validate_positive_int("vocabulary_size", vocabulary_size)
        validate_positive_int("num_buckets", num_buckets)
        validate_positive_int("output_dim", output_dim)
        if isinstance(order, bool) or not isinstance(order, int) or order < 2:
            raise ValueError("`order` must be an int of at least 2 (2 = bigrams). "
                             f"Received: order={order!r}")
        if vocabulary_size * vocabulary_size > INT32_LIMIT:
            raise ValueError(
                "`vocabulary_size` squared must stay below 2**31 for the int32 "
                "n-gram hash, so `vocabulary_size` can be at most 46340. "
                f"Received: vocabulary_size={vocabulary_size}")
        if order >= 3 and num_buckets * vocabulary_size > INT32_LIMIT:
            raise ValueError(
                "With `order` >= 3, `num_buckets * vocabulary_size` must stay "
                f"below 2**31 for the int32 n-gram hash, so `num_buckets` can be "
                f"at most {INT32_LIMIT // vocabulary_size} here. Received: "
                f"num_buckets={num_buckets}, vocabulary_size={vocabulary_size}")
        self.vocabulary_size = vocabulary_size
        self.num_buckets = num_buckets
        self.output_dim = output_dim
        self.order = order
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, inputs_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_buckets, self.output_dim),
            initializer=self.embeddings_initializer)

    def call(self, inputs):
        ids = ops.cast(inputs, "int32")
        buckets, size = self.num_buckets, self.vocabulary_size
        # `shifted[k]` is the ids shifted right by k, with 0 (padding)
        # shifted in, so an n-gram reaching before position 0 counts as
        # containing padding.
        shifted = [ids]
        for _ in range(self.order - 1):
            shifted.append(ops.pad(shifted[-1][:, :-1], [[0, 0], [1, 0]]))
        valid = ops.not_equal(ids, 0)
        total = None
        for n in range(2, self.order + 1):
            first = shifted[n - 1]  # x[t-n+1]
            valid = ops.logical_and(valid, ops.not_equal(first, 0))
            hashed = first
            for k in range(n - 2, -1, -1):  # x[t-n+2], ..., x[t]
                # Below V * V for the first step, below B * V after it.
                hashed = ops.mod(hashed * size + shifted[k], buckets)
            rows = ops.take(self.embeddings, hashed, axis=0)
            rows = rows * ops.expand_dims(ops.cast(valid, rows.dtype), -1)
            total = rows if total is None else total + rows
        return total

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((*inputs.shape, self.output_dim),
                                 dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_buckets": self.num_buckets,
            "output_dim": self.output_dim,
            "order": self.order,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer),
        }
