"""Benchmark harness for the performance goals: loopback-only, time-bounded, run by
`python -m bench.run`."""
