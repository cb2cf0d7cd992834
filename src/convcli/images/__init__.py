"""Image and matrix files -> numbers -> the ops -> files: reading, kernels, edges, convolution and
pooling of whole files, tone mapping and panels, and the writers."""
