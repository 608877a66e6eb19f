"""TensorFlow XLA flags that make `xla="fusible"` possible; no TensorFlow import.

TensorFlow reads `TF_XLA_FLAGS` once, when it is imported. `import keraslm`
(which does not import TensorFlow) therefore adds two flags to it while
TensorFlow is not yet loaded:

- `--tf_xla_cpu_global_jit`: lets auto-clustering (off unless something turns
  it on) work on the CPU;
- `--tf_xla_ops_to_cluster=FUSIBLE`: auto-clustering then compiles only the
  element-wise ops, reductions and the like, and leaves matrix products to
  TensorFlow's oneDNN kernels.

Both do nothing until auto-clustering is switched on, which
`keraslm.training.fusible_xla()` does for the span of a training run:
`jit_compile=True` functions and plain TensorFlow code run exactly as before.
One visible effect: code that turns auto-clustering on itself
(`tf.config.optimizer.set_jit(True)`) then gets fusible-only clusters, on
the CPU too. Flags the user has already put in `TF_XLA_FLAGS` win, and
`KERASLM_TF_XLA_FLAGS=0` (set before `import keraslm`) leaves `TF_XLA_FLAGS`
untouched.
"""

import os
import sys

CPU_GLOBAL_JIT = "--tf_xla_cpu_global_jit"
OPS_TO_CLUSTER = "--tf_xla_ops_to_cluster"
FUSIBLE_FLAGS = (CPU_GLOBAL_JIT, f"{OPS_TO_CLUSTER}=FUSIBLE")

# Why `prepare()` added nothing ("" when it ran normally), for the error
# message of `fusible_xla()`.
state = {"reason": "prepare() has not run"}


def _has_flag(flags, name):
    return any(part == name or part.startswith(name + "=") for part in flags.split())


def prepare(environ=os.environ, modules=sys.modules):
    """Adds the fusible flags to `TF_XLA_FLAGS` if TensorFlow is not loaded yet.

    Returns the flags added (none if TensorFlow was already imported, if the
    user set `KERASLM_TF_XLA_FLAGS=0`, or if `TF_XLA_FLAGS` already names
    them).
    """
    if environ.get("KERASLM_TF_XLA_FLAGS", "1").strip().lower() in ("0", "false", "no"):
        state["reason"] = "KERASLM_TF_XLA_FLAGS=0 was set"
        return ()
    if "tensorflow" in modules:
        state["reason"] = "tensorflow was imported before keraslm"
        return ()
    flags = environ.get("TF_XLA_FLAGS", "")
    added = tuple(flag for flag in FUSIBLE_FLAGS
                  if not _has_flag(flags, flag.split("=")[0]))
    if added:
        environ["TF_XLA_FLAGS"] = " ".join([flags, *added]).strip()
    state["reason"] = ""
    return added


def fusible_flags_active(environ=os.environ):
    """Whether TensorFlow in this process runs with fusible-only clustering.

    True when `TF_XLA_FLAGS` holds `--tf_xla_cpu_global_jit` and
    `--tf_xla_ops_to_cluster=FUSIBLE`. keraslm adds them only while
    TensorFlow is not loaded, and TensorFlow reads them when it loads, so the
    variable tells (unless other code changed it after TensorFlow loaded).
    """
    flags = environ.get("TF_XLA_FLAGS", "").split()
    return CPU_GLOBAL_JIT in flags and f"{OPS_TO_CLUSTER}=FUSIBLE" in flags


def inactive_reason(environ=os.environ):
    """Why `fusible_flags_active()` is False, in words a user can act on."""
    flags = environ.get("TF_XLA_FLAGS", "")
    reason = state["reason"] or "TF_XLA_FLAGS lacks them"
    return (f"TensorFlow must start with TF_XLA_FLAGS holding "
            f"'{' '.join(FUSIBLE_FLAGS)}' ({reason}; TF_XLA_FLAGS={flags!r}). "
            f"Import keraslm before keras and tensorflow, or set TF_XLA_FLAGS "
            f"before starting Python, or use xla='on' (the whole step in XLA) "
            f"instead.")
