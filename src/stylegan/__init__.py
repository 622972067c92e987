"""stylegan: StyleGAN, StyleGAN2 and StyleGAN2-ADA in pure PyTorch."""
__version__ = "0.1.0"
