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
from nnbackend.layers.base import Layer, from_config, get
from nnbackend.layers.conv import Conv2D
from nnbackend.layers.dense import Dense
from nnbackend.layers.dropout import Dropout
from nnbackend.layers.normalization import BatchNorm
from nnbackend.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from nnbackend.layers.reshape import Flatten

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "from_config",
    "get",
]
