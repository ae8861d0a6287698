"""Runtime helpers every layer may use (progress and log lines, atomic writes, background imports, seeded
samplers and loaders); they import no other glovita package, so no import cycle runs through them."""
