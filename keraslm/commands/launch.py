"""`keraslm launch`: run a multi-worker training job as local processes.

```bash
keraslm launch --workers 2 --max-restarts 1 -- train --strategy multi_worker \\
    --task lm --train train.txt --steps 2000 --batch-size 32 -o runs/lm2
```

Starts N worker processes of `keraslm train ...` on this machine, each with
its `TF_CONFIG` (free localhost ports, worker 0 the chief), or with
`--strategy data_parallel` the JAX settings (`KERAS_BACKEND=jax`, worker
0's port as the coordinator, the process count and id), and prints their
output with a `[worker i]` prefix. When a worker dies the others cannot go
on (their next all-reduce fails): the launcher stops them all and starts
every worker again with `--resume RUN_DIR`, so the job goes on from its last
checkpoint, up to `--max-restarts` times (restarts count only after the run
directory holds a checkpointed run; before that a failure is final).

On several machines, run the `train` command on each with its own
`TF_CONFIG` (the same worker list, this machine's index), see the README.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def configure(parser):
    parser.add_argument("--workers", type=int, required=True, metavar="N",
                        help="worker processes to start on this machine")
    parser.add_argument("--max-restarts", type=int, default=0, metavar="K",
                        help="relaunch every worker from the last checkpoint up to K "
                             "times when one dies (default: 0)")
    parser.add_argument("--join-timeout", type=float, default=None, metavar="SECONDS",
                        help="how long each worker waits for the others to join "
                             "(KERASLM_JOIN_TIMEOUT; default 300)")
    parser.add_argument("--cores-per-worker", type=int, default=None, metavar="C",
                        help="pin each worker to C cores of its own (Linux), and "
                             "give TensorFlow as many threads")
    parser.add_argument("command", nargs="+", metavar="-- train ...",
                        help="the keraslm command every worker runs (train ... with "
                             "--strategy multi_worker)")


def free_ports(count):
    """`count` distinct free TCP ports on localhost."""
    sockets, ports = [], []
    for _ in range(count):
        handle = socket.socket()
        handle.bind(("localhost", 0))
        sockets.append(handle)
        ports.append(handle.getsockname()[1])
    for handle in sockets:
        handle.close()
    return ports


def worker_environments(workers, ports, environ=None, cores_per_worker=None,
                        strategy="multi_worker"):
    """The environment of each local worker: its `TF_CONFIG`, or for
    `data_parallel` (JAX) the coordinator (worker 0's port), the process
    count and its id."""
    environ = dict(os.environ if environ is None else environ)
    addresses = [f"localhost:{port}" for port in ports]
    environments = []
    for index in range(workers):
        env = dict(environ)
        if strategy == "data_parallel":
            env.update(KERAS_BACKEND="jax", KERAS_DISTRIBUTION_JOB_ADDRESSES=addresses[0],
                       KERAS_DISTRIBUTION_NUM_PROCESSES=str(workers),
                       KERAS_DISTRIBUTION_PROCESS_ID=str(index))
        else:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                           "task": {"type": "worker", "index": index}})
        if cores_per_worker:
            env["TF_NUM_INTRAOP_THREADS"] = str(cores_per_worker)
            env["TF_NUM_INTEROP_THREADS"] = "1"
        environments.append(env)
    return environments


def _run_dir(command):
    """The run directory a `train` command writes (`-o`/`--output-dir`/`--resume`)."""
    for flag in ("--resume", "-o", "--output-dir"):
        for position, item in enumerate(command):
            if item == flag and position + 1 < len(command):
                return command[position + 1]
            if item.startswith(flag + "="):
                return item.split("=", 1)[1]
    return None


def _strategy(command, run_dir=None):
    """`multi_worker` or `data_parallel`: the command's `--strategy`, or
    for `--resume` the run's."""
    for position, item in enumerate(command):
        if item == "--strategy" and position + 1 < len(command):
            return command[position + 1]
        if item.startswith("--strategy="):
            return item.split("=", 1)[1]
    if "--resume" in command and run_dir:
        from keraslm.training.run_directory import RunDirectory

        try:
            return RunDirectory(run_dir).info()["config"].get("strategy") or "multi_worker"
        except (OSError, ValueError, KeyError):
            pass
    return "multi_worker"


def resume_command(command, run_dir):
    """`train --resume RUN_DIR` (what every worker runs after a restart)."""
    return ["train", "--resume", run_dir] + (["--quiet"] if "--quiet" in command else [])


def _stream(process, prefix, out):
    for line in iter(process.stdout.readline, ""):
        out.write(f"{prefix} {line}")
        out.flush()
    process.stdout.close()


def _start(command, environments, cores_per_worker):
    processes, threads = [], []
    for index, env in enumerate(environments):
        preexec = None
        if cores_per_worker and hasattr(os, "sched_setaffinity"):
            available = sorted(os.sched_getaffinity(0))
            first = (index * cores_per_worker) % max(len(available), 1)
            cores = {available[(first + i) % len(available)]
                     for i in range(cores_per_worker)}

            def preexec(cores=cores):
                os.sched_setaffinity(0, cores)
        process = subprocess.Popen(
            [sys.executable, "-m", "keraslm", *command], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            preexec_fn=preexec, start_new_session=True)
        thread = threading.Thread(target=_stream, args=(process, f"[worker {index}]",
                                                        sys.stdout), daemon=True)
        thread.start()
        processes.append(process)
        threads.append(thread)
        print(f"[launch] worker {index}: pid {process.pid}", flush=True)
    return processes, threads


def _stop(processes, grace=3.0):
    """SIGTERM, then SIGKILL after `grace` seconds (a worker blocked in an
    all-reduce whose peer is gone does not answer SIGTERM)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    end = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(end - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(processes, interrupted=()):
    """Waits until all end (0) or one fails; returns (index, status) of the
    first failure, or None. Ctrl-C (`interrupted`) ends the wait too."""
    while not interrupted:
        statuses = [process.poll() for process in processes]
        for index, status in enumerate(statuses):
            if status not in (None, 0):
                return index, status
        if all(status == 0 for status in statuses):
            return None
        time.sleep(0.2)
    return 0, -int(signal.SIGINT)


def launch(command, workers, max_restarts=0, join_timeout=None, cores_per_worker=None,
           say=print):
    """Runs `command` (`["train", ...]`) as `workers` local processes; returns
    the exit status (0 when every worker finished)."""
    from keraslm.training.run_directory import RunDirectory

    if workers < 1:
        raise ValueError(f"--workers must be at least 1. Received: {workers}")
    if max_restarts < 0:
        raise ValueError(f"--max-restarts must be >= 0. Received: {max_restarts}")
    if not command or command[0] != "train":
        raise ValueError(f"keraslm launch runs `train ...` on every worker. Received: "
                         f"{' '.join(command) or '(nothing)'}")
    if "--resume" not in command and "--strategy" not in command and not any(
            item.startswith("--strategy=") for item in command):
        command = [*command, "--strategy", "multi_worker"]
    strategy = _strategy(command, run_dir=_run_dir(command))
    run_dir = _run_dir(command)
    if run_dir is None:
        raise ValueError("keraslm launch needs the run directory to restart from: give "
                         "train -o RUN_DIR (or --resume RUN_DIR).")
    environ = dict(os.environ)
    if join_timeout is not None:
        environ["KERASLM_JOIN_TIMEOUT"] = str(join_timeout)
    restarts = 0
    interrupted = []
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        while True:
            ports = free_ports(workers)
            say(f"[launch] {workers} workers on localhost:{','.join(map(str, ports))}: "
                f"keraslm {' '.join(command)}")
            processes, threads = _start(command, worker_environments(
                workers, ports, environ, cores_per_worker, strategy), cores_per_worker)
            failure = _wait(processes, interrupted)
            if failure is not None and not interrupted:
                index, status = failure
                say(f"[launch] worker {index} ended with status {status}; stopping the "
                    f"others")
            _stop(processes)
            for thread in threads:
                thread.join(timeout=5)
            if failure is None:
                say(f"[launch] done: {run_dir}")
                return 0
            if interrupted:
                say(f"[launch] interrupted: every worker stopped; continue from the last "
                    f"checkpoint with: keraslm launch --workers {workers} -- train "
                    f"--resume {run_dir}")
                return 130
            if restarts >= max_restarts:
                say(f"[launch] worker {failure[0]} failed (status {failure[1]}); "
                    f"{restarts} restart(s) used of --max-restarts {max_restarts}")
                return failure[1] if failure[1] > 0 else 1
            if not RunDirectory(run_dir).backups():
                say(f"[launch] {run_dir} holds no checkpoint yet: nothing to restart "
                    f"from (status {failure[1]})")
                return failure[1] if failure[1] > 0 else 1
            restarts += 1
            command = resume_command(command, run_dir)
            say(f"[launch] restart {restarts} of {max_restarts}: every worker from the "
                f"last checkpoint of {run_dir}")
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args):
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    return launch(command, args.workers, args.max_restarts, args.join_timeout,
                  args.cores_per_worker)
