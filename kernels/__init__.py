"""gravitas.kernels"""
