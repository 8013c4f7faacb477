"""Physics and learning: numba Ising kernels, exact references, RBM training and measurements.

This package never imports Ray and knows nothing of the file layout (README, "Layout").
"""
