"""Video encoders: clips (B, C, T, H, W), or (B, K, C, T, H, W) for K clips per video, -> features (B, D)."""
