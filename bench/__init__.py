"""Benchmarks: model-only speed against peer architectures, HTTP load, memory, load time.

``python -m bench`` (``make bench``; ``make bench-quick`` for the quick mode) writes
``bench/results.json`` and ``bench/RESULTS.md``; docs/benchmark.md explains every figure.
"""
