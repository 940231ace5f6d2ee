"""Short-term variability from event lists (the ``variability events`` command).

``eventlist`` reads EPIC event lists and hot-pixel lists, ``exod`` is the EXOD variability-map
search, ``exod2`` / ``exod2_search`` the EXOD2 Bayes-factor search, ``search`` runs a search over
files and builds the candidate table, ``cli`` is the command.  Kept empty (light to import).
"""
