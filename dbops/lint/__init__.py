"""Lint: rules over statements, and running them on a set of scripts."""
