"""Shared test support: fixtures, worlds, payload builders and reference implementations (no tests)."""
