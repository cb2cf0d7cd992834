"""Words, spec files, zoo names and checkpoints -> one network spec -> shapes, receptive fields,
parameters and MACs: what `shape-calc`, `params`, `flops` and `train` read."""
