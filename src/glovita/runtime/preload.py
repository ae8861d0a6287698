"""Import slow, late-needed libraries on a background thread while data and model are built.

torchmetrics (~1.2 s) is first needed at the first validation and matplotlib (~0.5 s) at the end of the run;
importing them off the critical path overlaps that time with dataset scanning, model construction and the
first training steps (which release the GIL in PyTorch kernels). Python's import lock keeps this safe: a
main-thread import of the same module waits for the background one to finish. `run_training` joins the
thread before any DataLoader forks workers and on every exit path: forking, or finalizing the interpreter,
while a thread is inside a C++-backed import can abort the process.
"""

import threading


def _import_late_libraries() -> None:
    import matplotlib

    matplotlib.use("Agg")  # the run directory gets PNGs; no display is needed or wanted
    import matplotlib.pyplot  # noqa: F401
    import torchmetrics  # noqa: F401


_running: list[threading.Thread] = []


def preload_in_background() -> threading.Thread:
    thread = threading.Thread(target=_import_late_libraries, name="glovita-preload", daemon=True)
    thread.start()
    _running.append(thread)
    return thread


def wait_for_preload() -> None:
    """Block until background imports are done. Needed before importing transformers or peft: torchmetrics
    imports part of transformers, whose lazy module is not safe to import from two threads at once."""
    while _running:
        _running.pop().join()
