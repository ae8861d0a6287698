"""Training and evaluation steps: one module per step kind (`training.step`), chosen in steps/factory.py."""
