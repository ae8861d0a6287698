"""Policies that only make sense for one dataset."""
