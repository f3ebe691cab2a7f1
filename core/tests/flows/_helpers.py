"""Tiny helpers the test flows share: counters and flags in $PLAIT_TEST_STATE."""

import os


def state_path(name):
    return os.path.join(os.environ["PLAIT_TEST_STATE"], name)


def bump(name):
    """Count one more call of ``name`` (safe across processes); return the new count."""
    fd = os.open(state_path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
    with open(state_path(name)) as f:
        return len(f.read())


def flag(name):
    """True if the test created the file ``name`` in the state directory."""
    return os.path.exists(state_path(name))
