"""Benchmarks (not tests): see BENCHMARKS.md and ``python -m bench.bench_forms --help``."""
