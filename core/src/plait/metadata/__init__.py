"""Run, step, task and attempt bookkeeping behind a provider interface."""
