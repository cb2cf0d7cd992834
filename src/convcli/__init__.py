"""convcli: a command-line toolkit for convolutional neural networks."""

__version__ = "0.1.0"
