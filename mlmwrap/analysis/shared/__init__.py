"""Helpers that more than one analysis uses (so the analyses need not import each other)."""
