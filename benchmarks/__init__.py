"""Benchmarks for AI Tagger against the bundled test servers: ``python -m benchmarks.run``."""
