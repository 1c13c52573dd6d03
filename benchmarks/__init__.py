"""Benchmarks run by ``make bench`` (``python -m benchmarks``); they print, never assert."""
