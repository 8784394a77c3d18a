"""Analysis built on ranking runs: editions over time and moves, cluster profiles,
sensitivity to the method's parameters and calibration against a reference table.

Every function here takes ranked results (:class:`stclusters.pipeline.RankResult`) or the
located records they came from (:class:`stclusters.pipeline.Located`); nothing here reads an
input file or changes a ranking.
"""
