"""Backend-neutral experiment tracking; training code only calls the ExperimentLogger interface."""
