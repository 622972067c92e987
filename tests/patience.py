"""How long a test waits for another thread or process (a server starting, workers finishing) before failing.

Such a limit only turns a hang into a failure; it never measures speed, so it must hold on a machine whose cores
are busy with other work. `patience(seconds)` scales a limit that is ample on an idle machine by the machine's
load (the 1-minute load average per core, when above 1) and by the STYLEGAN_TEST_PATIENCE factor (default 1).
"""
import os


def patience(seconds: float) -> float:
    """`seconds` scaled for the machine's current load (and STYLEGAN_TEST_PATIENCE)."""
    try:
        load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        load_per_core = 1.0
    return seconds * max(1.0, load_per_core) * float(os.environ.get("STYLEGAN_TEST_PATIENCE", "1"))
