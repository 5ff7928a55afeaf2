"""The openEO API 1.2 back-end on a node's edge (``/openeo/1.2/``).

Small modules, one job each: :mod:`errors` (openEO error bodies), :mod:`auth` (basic
credentials -> the edge's bearer token), :mod:`capabilities`, :mod:`collections`
(from the layer registry and the federated STAC catalog), :mod:`engine` (the adapter to
the process-graph engine), :mod:`udps` (user-defined processes), :mod:`jobs` (batch
jobs), :mod:`federation` (forwarding graphs to the node holding the data) and
:mod:`app` (the sub-application mounted by ``streams/edge/assemble.py``).
"""
