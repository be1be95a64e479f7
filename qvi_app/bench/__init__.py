"""Benchmarks (``qvi bench``): speed and memory, each against this machine's measured limits."""

from qvi_app.bench.run import BenchConfig, format_table, run

__all__ = ["BenchConfig", "format_table", "run"]
