"""The driver: spec, plan, scheduler, backends, storage and CLI; never imports numba (README, "Layout")."""

__version__ = "0.1.0"
