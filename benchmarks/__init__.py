"""stclusters benchmarks (see run.py)."""
