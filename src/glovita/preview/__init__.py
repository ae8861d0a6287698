"""Pictures of what the data pipeline makes, drawn before any training (glovita_show_augmentations)."""
