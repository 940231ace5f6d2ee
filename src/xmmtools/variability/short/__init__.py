"""Short-term variability from light curves (within one observation).

``lightcurves`` finds and reads light-curve files, ``statistics`` holds the constancy tests,
Fvar, excess variance, shape features and Bayesian blocks (numpy arrays in, arrays out),
``table`` turns results into per-curve tables or catalogue columns, ``plot`` draws them,
``spec`` registers the ``variability-short`` stage and ``cli`` is the ``variability short``
command.  Kept empty so that importing ``spec`` stays light.
"""
