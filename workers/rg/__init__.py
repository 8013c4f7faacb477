"""The RG room: majority-rule block spins, renormalized temperatures, stacked RBMs and RBM flows."""
