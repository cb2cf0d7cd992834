"""The names of the optimisers and learning-rate schedules. Nothing heavy is imported here: the
CLI builds its ``--optimizer`` and ``--schedule`` choices from these without loading numpy."""

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("none", "step", "cosine")

# arrays of each parameter's size an optimiser keeps: momentum's velocity, Adam's two moments
STATE_COPIES = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}
