"""Leave a finished command without the interpreter's teardown.

Finalising the interpreter after a training command (tearing down torch, torchvision, sympy, timm and the rest
module by module) takes about 2 s on a 2-core machine, after every file is written. `exit_now` does what a normal
exit must still do (the exit handlers that loggers register, joining the threads that are not daemons, ending
daemonic child processes, flushing stdout and stderr) and then ends the process at once."""

import atexit
import os
import signal
import sys
import threading


def exit_now(code: int = 0) -> None:
    """Run the exit handlers, join non-daemon threads, stop child processes still running (the loader workers of a
    run that stopped with an error), flush, and end the process with `code`."""
    import multiprocessing

    if hasattr(signal, "SIGCHLD"):  # ending the loader workers here is expected: not an error for torch to raise
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in multiprocessing.active_children():  # daemonic workers: a normal exit terminates them too
        child.terminate()
        child.join(timeout=1)
        if child.is_alive():  # a loader worker defers SIGTERM (runtime/loaders.py): end it now
            child.kill()
            child.join(timeout=5)
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be shown
            pass
    os._exit(code)
