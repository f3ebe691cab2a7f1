"""Plait vs Metaflow benchmark harness (standard library only); entry point: benchmarks/run.py."""
