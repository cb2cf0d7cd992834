"""CNNs trained from scratch in numpy: layers, models built from a spec, optimisers, the training
loop, checkpoints and digit preprocessing. Used by ``convcli train``, ``evaluate`` and ``predict``."""
