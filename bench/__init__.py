"""Benchmark harness for issue 4: loopback-only, time-bounded, run by `python -m bench.run`."""
