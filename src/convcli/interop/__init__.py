"""Networks out of convcli: a checkpoint or a spec written as an ONNX file or a PyTorch module."""
