"""Training across processes and machines: `--strategy multi_worker` (TF).

Keras 3's `fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585, tensorflow#72388), so this module drives the
training workflow's own callbacks from a custom loop (`MultiWorkerFit`):
`strategy.run` of a step that calls the Keras model, `tape.gradient` and the
optimizer, whose `GlobalClipAcrossReplicas` all-reduces the gradients, clips
the global gradient and then applies it. The masked token loss is normalised
by the global count of real tokens (`keraslm.losses`).

The cluster comes from `TF_CONFIG` (`read_tf_config`): one process per
machine (or per core, `keraslm launch`), worker 0 the chief. Every worker
runs the same workflow; the chief writes the run directory, the others
write into a scratch directory that is removed at the end, so the callbacks
(and their collectives) stay the same on every worker. Before any long work
the workers check that they were started with the same configuration (a
hash of it) and that every one joined within `KERASLM_JOIN_TIMEOUT` seconds.

Each global batch of `batch_size` rows is cut into one slice per worker
(`local_batches`): every worker reads the same shuffled batches and trains
on its own rows, so no example is trained twice in an epoch, and a partial
last batch is padded with ignored tokens (token tasks), which changes no
loss.

A worker that dies takes the job down (the others fail on their next
all-reduce); `keraslm launch` relaunches every worker from the last
checkpoint.
"""

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile

STRATEGIES = ("multi_worker", "data_parallel")
JAX_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                 "KERAS_DISTRIBUTION_PROCESS_ID")
JOIN_TIMEOUT_VARIABLE = "KERASLM_JOIN_TIMEOUT"
DEFAULT_JOIN_TIMEOUT = 300.0

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


class ClusterError(ValueError):
    """The cluster description is missing or wrong, or the workers disagree."""


class Cluster:
    """One worker's view of the cluster.

    Args:
        addresses: list of str. Every worker's `host:port`, the chief first.
        index: int. This worker's position in `addresses`.
    """

    def __init__(self, addresses, index, num_workers=None):
        self.addresses = list(addresses)
        self.index = index
        self._num_workers = num_workers

    @property
    def num_workers(self):
        return self._num_workers or len(self.addresses)

    @property
    def is_chief(self):
        return self.index == 0

    def __repr__(self):
        return f"Cluster(addresses={self.addresses!r}, index={self.index})"


def _address_problem(address):
    if not isinstance(address, str) or address.count(":") < 1:
        return "not host:port"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "not host:port with a port in 1-65535"
    return None


def read_tf_config(environ=None) -> Cluster:
    """The cluster of `TF_CONFIG`, or a `ClusterError` saying what is wrong.

    `{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}`;
    a `"chief"` job of one address is also accepted (it is worker 0, and
    the `worker` job's addresses follow it).
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise ClusterError(
            "`--strategy multi_worker` reads the cluster from the TF_CONFIG environment "
            f"variable, which is not set. Expected on each machine: {TF_CONFIG_EXAMPLE} "
            "(the same worker list everywhere, this machine's index; index 0 is the "
            "chief), or start local workers with `keraslm launch --workers N -- train ...`.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({error}). Received: "
                           f"TF_CONFIG={text!r}. Expected: {TF_CONFIG_EXAMPLE}") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ClusterError(f"TF_CONFIG must hold a 'cluster' and a 'task' object. "
                           f"Received: TF_CONFIG={text!r}. Expected: {TF_CONFIG_EXAMPLE}")
    chief = cluster.get("chief", [])
    workers = cluster.get("worker", [])
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if (unknown or not isinstance(chief, list) or not isinstance(workers, list)
            or len(chief) > 1 or not chief + workers):
        raise ClusterError(
            f"TF_CONFIG's cluster must list the workers under 'worker' (and at most one "
            f"'chief'). Received: cluster={cluster!r}. Expected: {TF_CONFIG_EXAMPLE}")
    addresses = chief + workers
    for address in addresses:
        problem = _address_problem(address)
        if problem:
            raise ClusterError(f"TF_CONFIG's worker address {address!r} is {problem}. "
                               f"Received: cluster={cluster!r}")
    if len(set(addresses)) != len(addresses):
        raise ClusterError(f"TF_CONFIG lists an address twice. Received: "
                           f"cluster={cluster!r}")
    kind, index = task.get("type"), task.get("index", 0)
    jobs = {"chief": chief, "worker": workers}
    if kind not in jobs or not jobs[kind] or not isinstance(index, int) \
            or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise ClusterError(
            f"TF_CONFIG's task must name a job of the cluster and an index in it. "
            f"Received: task={task!r} for cluster={cluster!r}. Expected: "
            f'{{"type": "worker", "index": i}} with 0 <= i < {len(workers)}.')
    position = index if kind == "chief" else len(chief) + index
    return Cluster(addresses, position)


def read_jax_cluster(environ=None) -> Cluster:
    """The JAX processes: the coordinator's `host:port`, the process count
    and this process's id, from Keras' variables (`keraslm train
    --coordinator/--num-processes/--process-id` set them)."""
    environ = os.environ if environ is None else environ
    missing = [name for name in JAX_VARIABLES if not environ.get(name)]
    if missing:
        raise ClusterError(
            "`--strategy data_parallel` needs the coordinator's address, the number of "
            "processes and this process's id: --coordinator HOST:PORT --num-processes N "
            "--process-id I (or the environment variables " + ", ".join(JAX_VARIABLES)
            + f"). Missing: {', '.join(missing)}.")
    coordinator = environ["KERAS_DISTRIBUTION_JOB_ADDRESSES"].split(",")[0]
    problem = _address_problem(coordinator)
    if problem:
        raise ClusterError(f"The coordinator address {coordinator!r} is {problem}.")
    try:
        count = int(environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
        index = int(environ["KERAS_DISTRIBUTION_PROCESS_ID"])
    except ValueError:
        count = index = -1
    if count < 1 or not 0 <= index < count:
        raise ClusterError(
            f"The process count must be >= 1 and the process id in [0, count). Received: "
            f"num_processes={environ['KERAS_DISTRIBUTION_NUM_PROCESSES']!r}, "
            f"process_id={environ['KERAS_DISTRIBUTION_PROCESS_ID']!r}")
    return Cluster([coordinator], index, num_workers=count)


def check_port_free(address):
    """A `ClusterError` when this machine's `host:port` is already in use."""
    port = int(address.rpartition(":")[2])
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("", port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ClusterError(
                f"Port {port} of this worker's address {address} is already in use "
                f"(another job, or a worker of an earlier run still running). Received: "
                f"{address!r}. Stop that process or give this worker another port in "
                f"TF_CONFIG (`keraslm launch` picks free ports).") from None
        raise
    finally:
        probe.close()


def check_batch_size(batch_size, parts, what="workers"):
    if batch_size % parts:
        raise ClusterError(
            f"`batch_size` is the global batch, split evenly across the {what}: it "
            f"must be divisible by {parts}. Received: batch_size={batch_size}, "
            f"{what}={parts}.")


def config_hash(config):
    """The SHA-256 of the resolved configuration (`verbose` left out)."""
    import keraslm

    values = {k: v for k, v in config.to_dict().items() if k != "verbose"}
    text = json.dumps({"keraslm": keraslm.__version__, "config": values},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def join_timeout(environ=None):
    environ = os.environ if environ is None else environ
    text = environ.get(JOIN_TIMEOUT_VARIABLE)
    if not text:
        return DEFAULT_JOIN_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ClusterError(f"{JOIN_TIMEOUT_VARIABLE} must be a positive number of "
                           f"seconds. Received: {text!r}")
    return value


_WATCHDOG = """
import os, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(seconds)
try:
    os.kill(parent, 0)
except ProcessLookupError:
    sys.exit(0)
sys.stderr.write("[multi_worker] error: " + message + "\\n")
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def deadline(seconds, message):
    """Stops this process with `message` unless the block finishes within
    `seconds`. A join blocks inside TensorFlow, where neither a Python
    thread nor SIGTERM gets through, so a watchdog process prints the
    message and kills this one (status -9)."""
    import subprocess

    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                                 str(seconds), message], stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


# -- the strategy and collectives ------------------------------------------------
_STATE = {}


def strategy():
    """The process's `MultiWorkerMirroredStrategy` (see `join`)."""
    return _STATE["strategy"]


def cluster():
    return _STATE.get("cluster")


def join(config, say=print):
    """Reads `TF_CONFIG`, checks it, starts this worker's server and waits
    for every worker (up to the join timeout); then checks that all were
    started with the same configuration. Returns the `Cluster`."""
    if "cluster" in _STATE:
        return _STATE["cluster"]
    if config.strategy == "data_parallel":
        return _join_jax(config, say)
    import tensorflow as tf

    layout = read_tf_config()
    timeout = join_timeout()
    check_batch_size(config.batch_size, layout.num_workers)
    if config.time_budget:
        raise ClusterError(
            "`time_budget` measures one process's speed; every worker must train the "
            "same number of steps. Give `steps` or `epochs` with --strategy "
            f"multi_worker. Received: time_budget={config.time_budget!r}")
    check_port_free(layout.addresses[layout.index])
    say(f"[multi_worker] worker {layout.index} of {layout.num_workers} "
        f"({layout.addresses[layout.index]}); waiting up to {timeout:g} s for the others")
    message = (f"not every worker joined within {timeout:g} s (this is worker "
               f"{layout.index} of {layout.num_workers}: {layout.addresses}). Start "
               f"every worker of TF_CONFIG with the same command, or raise "
               f"{JOIN_TIMEOUT_VARIABLE}.")
    with deadline(timeout, message):
        created = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING))
        digest = config_hash(config)
        same = all_equal(created, _hash_numbers(digest))
    if not same:
        raise ClusterError(
            f"The workers were started with different configurations (this is worker "
            f"{layout.index}; hash of its resolved configuration {digest[:16]}). Start "
            f"every worker with the same command and options; only TF_CONFIG's task "
            f"index differs.")
    check_batch_size(config.batch_size, created.num_replicas_in_sync, "replicas")
    _STATE.update(strategy=created, cluster=layout)
    return layout


def _join_jax(config, say):
    import jax
    import keras
    import numpy as np
    from jax.experimental import multihost_utils

    layout = read_jax_cluster()
    timeout = join_timeout()
    check_batch_size(config.batch_size, layout.num_workers, "processes")
    if config.time_budget:
        raise ClusterError(
            "`time_budget` measures one process's speed; every process must train the "
            "same number of steps. Give `steps` or `epochs` with --strategy "
            f"data_parallel. Received: time_budget={config.time_budget!r}")
    coordinator = layout.addresses[0]
    if layout.is_chief:
        check_port_free(coordinator)
    with contextlib.suppress(Exception):  # CPU processes talk through Gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    say(f"[data_parallel] process {layout.index} of {layout.num_workers} (coordinator "
        f"{coordinator}); waiting up to {timeout:g} s for the others")
    message = (f"not every process joined within {timeout:g} s (this is process "
               f"{layout.index} of {layout.num_workers}, coordinator {coordinator}). "
               f"Start every process with the same command, or raise "
               f"{JOIN_TIMEOUT_VARIABLE}.")
    digest = config_hash(config)
    with deadline(timeout, message):
        keras.distribution.initialize(coordinator, layout.num_workers, layout.index)
        hashes = np.asarray(multihost_utils.process_allgather(
            np.array(_hash_numbers(digest))))
    if not (hashes == hashes[0]).all():
        raise ClusterError(
            f"The processes were started with different configurations (this is process "
            f"{layout.index}; hash of its resolved configuration {digest[:16]}). Start "
            f"every process with the same command and options; only the process id "
            f"differs.")
    check_batch_size(config.batch_size, jax.device_count(), "devices")
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(auto_shard_dataset=False))
    _STATE.update(cluster=layout, backend="jax")
    return layout


def _hash_numbers(digest):
    return [float(int(digest[i:i + 4], 16)) for i in range(0, 32, 4)]  # 8 x 16 bits


def all_sum(strategy, values):
    """The sum over workers of each worker's `values` (a list of floats)."""
    import tensorflow as tf

    reduce = _STATE.get("all_sum")
    if reduce is None:
        @tf.function(reduce_retracing=True)
        def reduce(local):
            def replica():
                context = tf.distribute.get_replica_context()
                return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(local))
            return strategy.run(replica)
        _STATE["all_sum"] = reduce
    result = strategy.experimental_local_results(reduce(tf.constant(values, tf.float64)))[0]
    return [float(v) / len(strategy.extended.worker_devices) for v in result.numpy()]


def all_equal(strategy, values):
    """Whether every worker holds the same `values` (the same answer on all:
    n * sum(v^2) == sum(v)^2 for each value)."""
    sums = all_sum(strategy, list(values) + [v * v for v in values] + [1.0])
    count = sums[-1]
    plain, squares = sums[:len(values)], sums[len(values):-1]
    return all(abs(count * q - p * p) <= 1e-9 * max(1.0, p * p)
               for p, q in zip(plain, squares))


def weight_spread(strategy, model):
    """The largest difference of a weight between a worker and the mean of
    all workers (0: every worker holds the same weights)."""
    import tensorflow as tf

    variables = model.weights

    @tf.function
    def spread():
        def replica():
            context = tf.distribute.get_replica_context()
            largest = tf.constant(0.0, tf.float64)
            for variable in variables:
                value = tf.cast(tf.convert_to_tensor(variable.value), tf.float64)
                mean = context.all_reduce(tf.distribute.ReduceOp.MEAN, value)
                largest = tf.maximum(largest, tf.reduce_max(tf.abs(value - mean)))
            return context.all_reduce(tf.distribute.ReduceOp.SUM, largest)
        return strategy.run(replica)

    return float(strategy.experimental_local_results(spread())[0])


# -- data ------------------------------------------------------------------------
def local_batches(dataset, batch_size, part, parts, ignore_class=None):
    """This worker's rows of each global batch: rows `[part * k, (part + 1) * k)`
    with `k = batch_size / parts`.

    A partial batch (an epoch's last) is first filled up to `batch_size`:
    with padding rows (ids 0, labels `ignore_class`) when the labels are
    token labels and the loss ignores a class, which leaves the loss and
    the gradient as they were; else with its own first rows.
    """
    import tensorflow as tf

    size = batch_size // parts

    def fill(tensor, value, rows, cyclic):
        missing = batch_size - rows
        if cyclic:
            index = tf.math.floormod(tf.range(batch_size), rows)
            return tf.gather(tensor, index)
        shape = tf.concat([[missing], tf.shape(tensor)[1:]], 0)
        return tf.concat([tensor, tf.fill(shape, tf.cast(value, tensor.dtype))], 0)

    def cut(*element):
        labels = element[1] if len(element) > 1 else element[0]
        rows = tf.shape(tf.nest.flatten(element[0])[0])[0]
        token_labels = (ignore_class is not None and labels.shape.rank is not None
                        and labels.shape.rank >= 2 and labels.dtype.is_integer)

        def pad(structure, value):
            return tf.nest.map_structure(
                lambda t: fill(t, value, rows, cyclic=not token_labels), structure)

        parts_out = [pad(element[0], 0)]
        if len(element) > 1:
            parts_out.append(pad(element[1], ignore_class if token_labels else 0))
        for extra in element[2:]:
            parts_out.append(pad(extra, 0))
        parts_out = tf.nest.map_structure(lambda t: t[part * size:(part + 1) * size],
                                          parts_out)
        return tuple(parts_out)

    return dataset.map(cut)


def with_class_weights(dataset, class_weight):
    """`(x, y)` batches as `(x, y, sample_weight)` with each row weighted by
    its label's `class_weight`: what `model.fit(..., class_weight=...)` does
    to a `tf.data` input (Keras' own map function), so that a multi-worker
    run weights the loss as a single process does. As in Keras, a label
    above the largest key fails; keraslm's weights name every label."""
    if not class_weight:
        return dataset
    from keras.src.trainers.data_adapters.tf_dataset_adapter import (
        make_class_weight_map_fn,
    )

    return dataset.map(make_class_weight_map_fn(class_weight))


# -- the run directory of a worker that is not the chief ------------------------------
def worker_run_directory(run, resume):
    """The chief writes `run`; another worker writes a scratch copy (its
    resume state and assets copied from `run` when resuming)."""
    from keraslm.training.run_directory import RunDirectory

    layout = cluster()
    if layout is None or layout.is_chief:
        return run
    # One place per run and worker: a worker killed before it removed its
    # copy (the launcher restarts after a SIGKILL) leaves nothing behind.
    name = hashlib.sha256(os.path.abspath(run.path).encode()).hexdigest()[:12]
    scratch = os.path.join(tempfile.gettempdir(), f"keraslm-worker{layout.index}-{name}")
    shutil.rmtree(scratch, ignore_errors=True)
    _STATE["scratch"] = scratch
    if not resume:
        os.makedirs(scratch)
    else:
        shutil.copytree(run.path, scratch, ignore=shutil.ignore_patterns(
            "logs", "checkpoints", "*.keras", "run.lock", "token_cache", "export",
            ".*partial*"))
    return RunDirectory(scratch)


def remove_scratch():
    scratch = _STATE.pop("scratch", None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


# -- the training loop -------------------------------------------------------------
class MultiWorkerFit:
    """`model.fit` for the training workflow under `MultiWorkerMirroredStrategy`.

    It takes the arguments the workflow gives `fit` (a dataset of global
    batches, `epochs`, `initial_epoch`, `steps_per_epoch`,
    `validation_data`, `callbacks`) and calls the callbacks as `fit` does:
    `on_train_batch_end` with the running mean of the loss of the interval,
    `on_test_begin`/`on_test_end` around validation, `on_epoch_end` with
    `loss` and `val_loss`.

    Args:
        model: a compiled Keras model built under `strategy()`.
        batch_size: int. The global batch.
        ignore_class: int or None. The label the loss ignores (for padding).
    """

    def __init__(self, model, batch_size, ignore_class=None):
        self.model = model
        self.strategy = strategy()
        self.cluster = cluster()
        self.batch_size = batch_size
        self.ignore_class = ignore_class
        self._step = None
        self.weight_spread = None

    def _distribute(self, dataset, class_weight=None):
        import tensorflow as tf

        workers = self.cluster.num_workers
        # Weighted before the global batch is cut and padded: filler rows
        # repeat a real row and its weight.
        dataset = with_class_weights(dataset, class_weight)
        local = local_batches(dataset, self.batch_size, self.cluster.index, workers,
                              self.ignore_class)
        per_replica = self.batch_size // self.strategy.num_replicas_in_sync
        local = local.unbatch().batch(per_replica, drop_remainder=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.OFF
        local = local.with_options(options)
        return self.strategy.distribute_datasets_from_function(lambda context: local)

    def _train_step(self):
        import tensorflow as tf

        if self._step is not None:
            return self._step
        model, strategy = self.model, self.strategy

        def replica_step(data):
            import keras

            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                # Scaled by 1/replicas (Keras' compute_loss under tf.distribute).
                loss = model.compute_loss(x, y, y_pred, sample_weight, training=True)
                scaled = model.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, model.trainable_variables)
            # keraslm's optimizers all-reduce, clip the global gradient, then apply.
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        @tf.function
        def step(iterator):
            losses = strategy.run(replica_step, args=(next(iterator),))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

        self._step = step
        return step

    def _validate(self, dataset):
        """`val_loss` as `fit` reports it (batch losses weighted by rows),
        the batches shared out between the workers."""
        import tensorflow as tf

        model = self.model
        loss_fn = model.loss

        @tf.function
        def batch_loss(x, y):
            value = loss_fn(y, model(x, training=False))
            if model.losses:
                value += tf.add_n(model.losses)
            return value

        total = rows = 0.0
        workers, index = self.cluster.num_workers, self.cluster.index
        for number, batch in enumerate(dataset):
            if number % workers != index:
                continue
            x, y = batch[0], batch[1]
            count = float(tf.shape(tf.nest.flatten(x)[0])[0])
            total += float(batch_loss(x, y)) * count
            rows += count
        total, rows = all_sum(self.strategy, [total, rows])
        return {"loss": total / rows if rows else float("nan")}

    def __call__(self, x, *, epochs, initial_epoch=0, steps_per_epoch, validation_data=None,
                 callbacks=None, class_weight=None, verbose=0, shuffle=False,
                 **unused):
        import keras

        if unused:
            raise TypeError(f"The multi-worker loop does not take {sorted(unused)} "
                            f"(it takes epochs, steps, validation data, callbacks, "
                            f"class weights, verbose and shuffle). Received: {sorted(unused)}")
        model = self.model
        callbacks = keras.callbacks.CallbackList(callbacks, add_history=True, model=model,
                                                 epochs=epochs, steps=steps_per_epoch,
                                                 verbose=0)
        step = self._train_step()
        iterator = iter(self._distribute(x, class_weight))
        model.stop_training = False
        callbacks.on_train_begin()
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            total, logs = 0.0, {}
            for batch in range(steps_per_epoch):
                callbacks.on_train_batch_begin(batch)
                total += float(step(iterator))
                logs = {"loss": total / (batch + 1)}
                callbacks.on_train_batch_end(batch, logs)
                if model.stop_training:  # the loss is the global one: all workers stop
                    break
            epoch_logs = dict(logs)
            if validation_data is not None and not model.stop_training:
                callbacks.on_test_begin()
                val_logs = self._validate(validation_data)
                callbacks.on_test_end(val_logs)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
            model.optimizer.finalize_variable_values(model.trainable_weights)
        self.weight_spread = weight_spread(self.strategy, model)
        _STATE["weight_spread"] = self.weight_spread
        callbacks.on_train_end(logs=epoch_logs)
        return model.history


def fit_function(model, config, loss):
    """What the workflow calls instead of `model.fit`."""
    if config.strategy not in STRATEGIES:
        return model.fit
    if config.time_budget:
        raise ClusterError(
            "A time budget measures one process's speed; every worker must train the "
            "same number of steps. Give `steps` or `epochs` with --strategy "
            f"multi_worker. Received: time_budget={config.time_budget!r}")
    ignore_class = getattr(loss, "ignore_class", None)
    if config.strategy == "data_parallel":
        layout = cluster()

        def fit(x, **options):  # keras.distribution assembles the global batch
            local = local_batches(x, config.batch_size, layout.index, layout.num_workers,
                                  ignore_class)
            history = model.fit(local, **options)
            _STATE["weight_spread"] = _jax_weight_spread(model)
            return history

        return fit
    return MultiWorkerFit(model, config.batch_size, ignore_class)


def _jax_weight_spread(model):
    """The largest difference between two processes' sums of a weight's
    values and of their squares (0 when all hold the same weights)."""
    import numpy as np
    from jax.experimental import multihost_utils

    local = []
    for variable in model.weights:
        value = np.asarray(variable.value.addressable_data(0), "float64")
        local += [value.sum(), np.square(value).sum()]
    gathered = np.asarray(multihost_utils.process_allgather(np.array(local)))
    return float(np.max(np.abs(gathered - gathered[0])))


def report():
    """What `metrics.json` records of a multi-worker run."""
    layout = cluster()
    if layout is None:
        return None
    if _STATE.get("backend") == "jax":
        import jax

        return {"processes": layout.num_workers, "devices": jax.device_count(),
                "weight_spread_across_workers": _STATE.get("weight_spread")}
    return {"workers": layout.num_workers,
            "replicas": strategy().num_replicas_in_sync,
            "weight_spread_across_workers": _STATE.get("weight_spread")}


def writes_run():
    """Whether this process saves and evaluates the final model: not a TF
    worker other than the chief. On JAX every process does (into its
    scratch directory when it is not the chief): saving and evaluating
    arrays spread over all processes are collectives."""
    layout = cluster()
    return layout is None or layout.is_chief or _STATE.get("backend") == "jax"
