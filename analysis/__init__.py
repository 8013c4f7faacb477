"""Reading and analysing an rgsweep Parquet dataset. Reads only the dataset on disk."""

from .load import TABLES, Dataset, load, read_table, unpack_spins

__all__ = ["TABLES", "Dataset", "load", "read_table", "unpack_spins"]
