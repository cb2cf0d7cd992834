"""The names of the optimisers, learning-rate schedules, backends and devices. Nothing heavy is
imported here: the CLI builds its ``--optimizer``, ``--schedule``, ``--backend`` and ``--device``
choices from these without loading numpy."""

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("none", "step", "cosine")
BACKENDS = ("numpy", "torch")  # what computes a training run: convcli's own layers, or PyTorch
DEVICES = ("auto", "cpu", "cuda")  # where PyTorch computes; auto: a CUDA GPU when there is one

# arrays of each parameter's size an optimiser keeps: momentum's velocity, Adam's two moments
STATE_COPIES = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}
