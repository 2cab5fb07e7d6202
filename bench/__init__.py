"""Benchmarks: `python -m bench.run` prints figures and ratios measured side by side in one run."""
