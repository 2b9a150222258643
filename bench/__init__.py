"""Benchmarks of the running service; ``python -m bench.service`` (``make bench``)."""
