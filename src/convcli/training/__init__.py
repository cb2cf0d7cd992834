"""Data sets -> a model -> a checkpoint: loaders and downloads, recipes, the training loop, runs,
evaluation and prediction, training curves and train-filter."""
