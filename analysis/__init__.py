"""Reading and analysing an rgsweep Parquet dataset. Reads only the dataset on disk.

``analysis.load(OUT)`` gives the tables as DataFrames; the functions below turn them into
thermodynamics with error bars, phase-transition estimates and RBM signatures;
``analysis.report.build_report(OUT)`` writes the whole report (``rgsweep report OUT``).
"""

from .load import TABLES, Dataset, load, read_table, unpack_spins
from .rbm_signatures import signature_features, signature_table
from .resampling import blocked_histogram, integrated_time
from .reweighting import multi_histogram, reweight_single
from .thermodynamics import (bootstrap_observables, free_energy_integration, load_histograms,
                             thermodynamics_table)
from .transition import (binder_crossings, binder_crossings_reweighted, fit_peak_shift,
                         fit_power_law, reweighted_peaks)

__all__ = ["TABLES", "Dataset", "load", "read_table", "unpack_spins",
           "thermodynamics_table", "load_histograms", "bootstrap_observables",
           "free_energy_integration", "blocked_histogram", "integrated_time", "reweight_single",
           "multi_histogram", "binder_crossings", "binder_crossings_reweighted", "reweighted_peaks",
           "fit_peak_shift", "fit_power_law", "signature_table", "signature_features", "build_report"]


def __getattr__(name):
    # build_report pulls in matplotlib; import it only when asked for
    if name == "build_report":
        from .report import build_report
        return build_report
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
