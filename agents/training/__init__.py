"""Federated learning on Flower: train where the data lives, move only model parameters.

The coordinator (the node a ``TrainingRequested`` reaches) runs the Flower server; each
participant builds its datacube locally and runs a Flower client next to its data. The
Flower processes run in their own interpreter (see :mod:`.flower_runtime`): Flower pins
versions of FastAPI, Typer and cryptography that cannot live beside the node's.
"""
