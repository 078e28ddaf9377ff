"""Evaluation: score providers on the same samples, compare them with honest statistics, and report."""
