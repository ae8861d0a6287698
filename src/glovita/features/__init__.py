"""Feature extraction and feature-space plots."""
