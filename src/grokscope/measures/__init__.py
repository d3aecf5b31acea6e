"""Measures: pure functions, arrays in and numbers or arrays out, each with its definition and
the seed section it comes from. They never train, log or read files."""

from grokscope.measures.norms import parameter_norms

__all__ = ["parameter_norms"]
