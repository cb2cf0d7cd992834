"""The names of the optimisers and learning-rate schedules. Nothing heavy is imported here: the
CLI builds its ``--optimizer`` and ``--schedule`` choices from these without loading numpy."""

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("none", "step", "cosine")
