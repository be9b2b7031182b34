#!/usr/bin/python3
"""Runs the tests' Python scripts in forked children of a process that has imported torch and torchvision once, as
`/usr/bin/python3 SCRIPT ARGS...` would run them: the same argv, working directory and environment, the script's own
folder first on sys.path, run as __main__, its exit status (SystemExit, or 1 and the traceback on an exception), its
stdout and stderr in files.

Why: importing torch and torchvision costs ~1.3 s of CPU (~2 s wall) per interpreter, and a test run starts about thirty
reference scripts while two test JVMs share the two cores. A fork after the import skips it. The parent runs no torch
op, so no OpenMP thread pool exists to be lost in the fork (libgomp's does not survive one): each child starts its
threads as a fresh interpreter would, after its own torch.set_num_threads. Environment variables read when libtorch
loads (OMP_WAIT_POLICY, OMP_NUM_THREADS) are the server's: it is started with the environment its clients have.

As a server (the tests' TorchReference.runScript starts one per build, and it exits after IDLE seconds without a
request): forkserver.py SOCKET IDLE. One request per connection, a JSON line {"argv", "cwd", "env", "out", "err",
"timeout"}; the reply is the exit status as a decimal line, written when the script has ended (a script still running
after "timeout" seconds is ended by SIGALRM, status 124). prebuild.py uses run() directly.
"""
import json
import os
import random
import runpy
import signal
import socket
import sys
import traceback

import torch  # noqa: F401  (imported once, here, for every child)
import torchvision  # noqa: F401

try:
    import onnx  # noqa: F401
except ImportError:
    pass


def _child(argv, cwd, env, out, err, timeout):
    """In the forked child: redirect output, set up the interpreter as for `python3 argv...`, run, return the status."""
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server ignores it; a script's subprocess.run must not
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if timeout:
        signal.alarm(int(timeout))
    # A fresh interpreter's random state: its own entropy for torch's default generator, Python's and numpy's global
    # ones (forked children would otherwise all share the server's).
    torch.seed()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    status = 0
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            status = 0
        elif isinstance(e.code, int):
            status = e.code
        else:
            print(e.code, file=sys.stderr)
            status = 1
    except BaseException as e:  # noqa: B036  (as the interpreter itself: print the traceback, exit 1)
        # From the script's own frame down, as the interpreter prints it (without this function's and runpy's).
        tb = e.__traceback__
        script = os.path.abspath(argv[0])
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb if tb is not None else e.__traceback__)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001  (a closed stream: nothing left to flush)
        pass
    return status


def run(argv, cwd, env, out, err, timeout=0):
    """Runs argv (a script and its arguments) in a forked child and returns its exit status."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = _child(argv, cwd, env, out, err, timeout)
        finally:
            os._exit(status & 0xFF)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _serve(conn):
    """In a forked handler: read one request, run it, reply with its status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # run() waits for its child
    with conn, conn.makefile("rwb") as stream:
        req = json.loads(stream.readline())
        status = run(req["argv"], req["cwd"], req["env"], req["out"], req["err"], req.get("timeout", 0))
        if status == 128 + signal.SIGALRM:
            status = 124
        stream.write(b"%d\n" % status)
        stream.flush()


def main(path, idle):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o077)  # only this user may connect: a request runs any script as this user
    try:
        server.bind(path)
    finally:
        os.umask(old_mask)
    server.listen(16)
    server.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    try:
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                return
            conn.settimeout(None)
            if os.fork() == 0:
                server.close()
                code = 1
                try:
                    _serve(conn)
                    code = 0
                finally:
                    os._exit(code)
            conn.close()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
