"""Synthetic bank with known ground truth (:func:`generate`) and exact process simulators.

- :func:`generate` / :class:`SynthBank` / :class:`Truth`: the contract tables (the optional
  relationship tables included) plus the true parameters (BG/NBD, Gamma-Gamma, Weibull PH closure
  with the behaviour link and the relationship terms, RM driver effects, market index).
- :func:`write` / :func:`read_truth`: Parquet tables + ``truth.json``.
- Building blocks: :func:`simulate_bgnbd`, :func:`simulate_bgnbd_transactions`,
  :func:`bgnbd_expected_frequency`, :func:`simulate_gamma_gamma`, :func:`simulate_weibull_ph`.
- CLI: ``python -m rmanalytics.synth --customers N --out DIR [--seed S]`` (:func:`main`).
- A bank larger than memory (10M customers): ``--shards K [--jobs J]``, independent sub-banks with
  disjoint ids streamed to one Parquet file per table (:mod:`rmanalytics.synth.shards`).
"""

from rmanalytics.synth.bank import COMPONENTS, SynthBank, Truth, generate, loyalty_truth, main, read_truth, write
from rmanalytics.synth.processes import (
    bgnbd_core,
    bgnbd_expected_frequency,
    piecewise_ph_invert,
    simulate_bgnbd,
    simulate_bgnbd_transactions,
    simulate_gamma_gamma,
    simulate_weibull_ph,
    weibull_ph_invert,
    weibull_ph_invert_steps,
)

__all__ = [
    "COMPONENTS", "SynthBank", "Truth", "generate", "loyalty_truth", "main", "read_truth", "write",
    "bgnbd_core", "bgnbd_expected_frequency", "simulate_bgnbd", "simulate_bgnbd_transactions",
    "simulate_gamma_gamma", "simulate_weibull_ph", "weibull_ph_invert", "piecewise_ph_invert",
    "weibull_ph_invert_steps",
]
