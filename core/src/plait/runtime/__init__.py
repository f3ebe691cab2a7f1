"""Scheduling and executing tasks: the scheduler, the task runner and compute backends."""
