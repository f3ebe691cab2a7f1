"""Reusable test suites: every datastore, metadata provider and compute backend passes the same one.

Import the submodules directly (they import pytest); this package itself imports nothing.
"""
