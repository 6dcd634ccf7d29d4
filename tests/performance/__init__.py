"""Benchmarks of the live path; never collected by the default test run (see README.md)."""
