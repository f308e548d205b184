"""Loyalty and customer lifetime value: BG/NBD, Gamma-Gamma, CLV, hold-out validation.

Exact maximum-likelihood implementations (log-space likelihoods with analytic gradients, fitted
with scipy's L-BFGS-B on log-parameters, compressed to distinct rows so that millions of
customers fit in seconds); see :mod:`rmanalytics.loyalty.beta_geo` for why we do not use
lifetimes (archived, breaks on current pandas) or pymc-marketing (Bayesian, heavy).
Time is in model time units (weeks by default: ``time_unit_days = 7``), money in currency units.
"""

from rmanalytics.loyalty.base import ConvergenceError, LoyaltyInputError, check_rfm, compress
from rmanalytics.loyalty.beta_geo import BetaGeoModel, bgnbd_loglik_terms
from rmanalytics.loyalty.clv import customer_lifetime_value, period_discount_rate
from rmanalytics.loyalty.gamma_gamma import GammaGammaModel, gamma_gamma_loglik_terms
from rmanalytics.loyalty.groups import (
    GroupModels,
    apply_by_group,
    calibration_split,
    customer_groups,
    fit_models,
    params_table,
    spend_model_check,
    tracking_by_group,
)
from rmanalytics.loyalty.plots import (
    plot_clv_deciles,
    plot_holdout_by_frequency,
    plot_p_alive_matrix,
    plot_tracking,
)
from rmanalytics.loyalty.utils import (
    by_segment,
    by_segments,
    clv_deciles,
    localize_index,
    loyalty_score,
    loyalty_scores,
    p_alive_matrix,
)
from rmanalytics.loyalty.validation import (
    holdout_by_frequency,
    holdout_errors,
    holdout_predictions,
    p_alive_calibration,
    tracking,
    tracking_sql,
)

__all__ = [
    "BetaGeoModel",
    "ConvergenceError",
    "GammaGammaModel",
    "GroupModels",
    "apply_by_group",
    "calibration_split",
    "customer_groups",
    "spend_model_check",
    "fit_models",
    "localize_index",
    "loyalty_score",
    "tracking_by_group",
    "params_table",
    "LoyaltyInputError",
    "bgnbd_loglik_terms",
    "by_segment",
    "by_segments",
    "check_rfm",
    "clv_deciles",
    "compress",
    "customer_lifetime_value",
    "gamma_gamma_loglik_terms",
    "holdout_by_frequency",
    "holdout_errors",
    "holdout_predictions",
    "loyalty_scores",
    "p_alive_calibration",
    "p_alive_matrix",
    "period_discount_rate",
    "plot_clv_deciles",
    "plot_holdout_by_frequency",
    "plot_p_alive_matrix",
    "plot_tracking",
    "tracking",
    "tracking_sql",
]
