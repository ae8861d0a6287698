"""Policy implementations: shared ones in shared_2d.py, dataset-specific ones in dataset_specific/<dataset>.py."""
