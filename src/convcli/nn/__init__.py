"""CNN layers in numpy with hand-written backward, models built from a network report, the loss,
optimisers and checkpoints. The training loop and its data live in `convcli.training`."""
