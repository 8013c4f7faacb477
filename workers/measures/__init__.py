"""The measurement room: what is measured on a trained RBM — free energies, KL and the
effective-Hamiltonian fit, Wishart spectra, RG block alignment, transport — and the table rows
they become."""
