"""stylegan: StyleGAN, StyleGAN2, StyleGAN2-ADA and StyleGAN3 in pure PyTorch.

    import stylegan
    G = stylegan.load_generator("network-snapshot.pkl")   # NVIDIA snapshot or TF pickle, rosinality .pt, our export
    img = G(z, c, truncation_psi=0.7, noise_mode="const")  # NCHW in [-1, 1]
"""
from .io.export import save_network
from .io.load import load_generator, load_network
from .networks.discriminator import Discriminator
from .networks.stylegan1 import Generator1
from .networks.stylegan1_discriminator import Discriminator1
from .networks.stylegan2 import Generator
from .networks.stylegan3 import Generator3

__version__ = "0.1.0"
__all__ = ["Discriminator", "Discriminator1", "Generator", "Generator1", "Generator3", "load_generator",
           "load_network", "save_network", "__version__"]
