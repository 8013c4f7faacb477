"""Configs, planning, backends and storage. Never imports numba or does array math (README, "Layout")."""

__version__ = "0.1.0"
