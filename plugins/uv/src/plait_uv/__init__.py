"""plait-uv: per-step Python environments for Plait flows (``@pypi``, ``@uv``), resolved,
locked and cached with uv."""

__version__ = "0.1.1"
