"""Reference P(alive) and expected purchases of the CDNOW sample as of 1997-09-30, computed
with the `lifetimes` package (BetaGeoFitter), for tests/cdnow.rs. Run once; the output is
committed (tests/data/cdnow_lifetimes_reference.csv) so that the Rust test needs no Python.

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install lifetimes==0.11.3
    /tmp/lt/bin/python tests/data/cdnow_lifetimes_reference.py > tests/data/cdnow_lifetimes_reference.csv

Parameters: the published CDNOW fit (Fader, Hardie & Lee 2005), which are churnwatch's
defaults ([churn_probability] in config/default.toml), set directly rather than fitted;
time unit weeks = days / 7; horizon 30 days = 30/7 weeks. Definitions are lifetimes' own
(`summary_data_from_transaction_data`, freq "D", observation_period_end inclusive):
frequency = distinct purchase days - 1, recency = last - first purchase day,
T = 1997-09-30 - first purchase day; recency and T are then divided by 7.
Customer ids are the sample index (second column), as tests/cdnow.rs converts them.
"""

import os
import sys

import lifetimes
import numpy as np
import pandas as pd
import scipy
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

END = "1997-09-30"
PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
UNIT_DAYS = 7.0
HORIZON_DAYS = 30.0

here = os.path.dirname(os.path.abspath(__file__))
tx = pd.read_csv(
    os.path.join(here, "CDNOW_sample.txt"),
    sep=r"\s+",
    header=None,
    names=["master_id", "customer_id", "date", "cds", "amount"],
    dtype={"master_id": str, "customer_id": str, "date": str},
)
tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
summary = summary_data_from_transaction_data(
    tx, "customer_id", "date", observation_period_end=END, freq="D"
)
summary["recency"] = summary["recency"] / UNIT_DAYS
summary["T"] = summary["T"] / UNIT_DAYS

bgf = BetaGeoFitter()
bgf.params_ = pd.Series(PARAMS)
p_alive = bgf.conditional_probability_alive(
    summary["frequency"], summary["recency"], summary["T"]
)
expected = bgf.conditional_expected_number_of_purchases_up_to_time(
    HORIZON_DAYS / UNIT_DAYS, summary["frequency"], summary["recency"], summary["T"]
)

out = sys.stdout
out.write(
    f"# lifetimes {lifetimes.__version__} (pandas {pd.__version__}, numpy {np.__version__}, "
    f"scipy {scipy.__version__}), BetaGeoFitter with params_ set to r={PARAMS['r']}, "
    f"alpha={PARAMS['alpha']}, a={PARAMS['a']}, b={PARAMS['b']} (not fitted)\n"
)
out.write(
    f"# CDNOW_sample.txt as of {END} (inclusive), freq D, recency and T in weeks = days/7; "
    f"expected purchases over {HORIZON_DAYS:g}/7 weeks\n"
)
out.write(
    "# command: python3 tests/data/cdnow_lifetimes_reference.py "
    "> tests/data/cdnow_lifetimes_reference.csv\n"
)
out.write("customer_id,frequency,recency_weeks,T_weeks,p_alive,expected_purchases\n")
for cid, f, rec, t, pa, e in zip(
    summary.index, summary["frequency"], summary["recency"], summary["T"], p_alive, expected
):
    out.write(f"{cid},{int(f)},{rec!r},{t!r},{float(pa)!r},{float(e)!r}\n")
