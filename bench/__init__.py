"""Benchmarks: `make bench` (python -m bench.run) seeds a large dataset and measures the portal."""
