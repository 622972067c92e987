"""stylegan: StyleGAN, StyleGAN2 and StyleGAN2-ADA in pure PyTorch.

    import stylegan
    G = stylegan.load_generator("network-snapshot.pkl")   # official snapshot or our .safetensors export
    img = G(z, c, truncation_psi=0.7, noise_mode="const")  # NCHW in [-1, 1]
"""
from .io.export import save_network
from .io.load import load_generator, load_network
from .networks.discriminator import Discriminator
from .networks.stylegan2 import Generator

__version__ = "0.1.0"
__all__ = ["Discriminator", "Generator", "load_generator", "load_network", "save_network", "__version__"]
