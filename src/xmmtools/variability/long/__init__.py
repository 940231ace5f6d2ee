"""Long-term variability between epochs and missions, STONKS style (``variability long``).

``epochs`` builds the per-source light curves (catalogue, archives, upper limits),
``statistics`` the long-term ratios and LT_FLAG bits, ``alerts`` the STONKS alerts,
``run`` puts them together into the stage's columns and outputs; ``match`` is the STONKS
positional match, ``bands`` the band conversion factors, ``plot`` the light-curve figures,
``spec`` registers the ``variability-long`` stage and ``cli`` is the command.  Kept empty
(light to import).
"""
