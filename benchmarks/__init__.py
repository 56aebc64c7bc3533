"""Speed of nnbackend against plain NumPy / CuPy loops, PyTorch and the GEMM floor.

Run: python -m benchmarks --backend numpy  (see benchmarks/README.md)
"""
