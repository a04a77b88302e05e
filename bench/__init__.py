"""Benchmarks that start a real server on loopback and print figures next to a baseline from the same run."""
