"""Layers: each a small class with a hand-written forward and backward.

    base.py           Layer (params, grads, state, output_shape), from_config
    dense.py          Dense
    activations.py    Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax
    conv.py           Conv2D (im2col.py: the windows it multiplies)
    pooling.py        MaxPool2D, AvgPool2D, GlobalAvgPool2D
    normalization.py  BatchNorm
    dropout.py        Dropout
    reshape.py        Flatten

Layers with weights draw them when built, which ``Sequential`` does with the model's
backend and seed; the others work on any backend's arrays as they come.
"""

from nnbackend.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from nnbackend.layers.base import Layer, from_config
from nnbackend.layers.dense import Dense

__all__ = [
    "Dense",
    "Identity",
    "Layer",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_config",
]
