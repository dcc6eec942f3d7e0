"""Benchmarks for AI Tagger against the bundled test servers: ``python3 -m benchmarks``.

One module per benchmark (``run(ctx) -> Result``); :mod:`benchmarks.harness` holds what they
share with each other and with the tests, :mod:`benchmarks.report` prints and saves figures.
"""
