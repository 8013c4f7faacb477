"""The RBM room: the model and its training loop, the fused float32 Gibbs kernels, block-Gibbs
chains, and partition functions (exact by enumerating the smaller layer, or AIS)."""
