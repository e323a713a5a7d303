"""Reproducible side-by-side measurements of mercurio-migrate: `python -m benchmarks`."""
