"""tyro entry points: parse a RootConfig, then call training."""
