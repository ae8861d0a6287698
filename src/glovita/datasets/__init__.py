"""Plain torch datasets built through `factory.py`; each returns (PIL image, target) before transforms."""
