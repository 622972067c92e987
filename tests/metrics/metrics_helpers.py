"""Small stand-ins for the metrics tests: a tiny generator and tiny image folders."""
import numpy as np
import torch
from PIL import Image


class TinyGenerator(torch.nn.Module):
    """The StyleGAN generator interface on a 2-layer MLP: z -> w (mapping) -> 1x16x16 image (synthesis)."""

    def __init__(self, z_dim=8, c_dim=0, resolution=16, channels=1, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, 8, 2
        self.img_resolution, self.img_channels = resolution, channels
        self.map_weight = torch.nn.Parameter(torch.randn(z_dim + c_dim, 8, generator=g) / 3)
        self.syn_weight = torch.nn.Parameter(torch.randn(8, channels * resolution * resolution, generator=g) / 3)

    def mapping(self, z, c, truncation_psi=1):
        w = torch.tanh(torch.cat([z, c], 1) @ self.map_weight) * truncation_psi
        return w[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const"):
        x = torch.tanh(ws.mean(1) @ self.syn_weight)
        if noise_mode == "random":
            x = x + 0.05 * torch.randn_like(x)
        return x.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution).clamp(-1, 1)

    def forward(self, z, c, truncation_psi=1, noise_mode="const"):
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode=noise_mode)


def blob_images(n, seed, resolution=16):
    """uint8 [n, 1, res, res] images of bright blobs at random places."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:resolution, :resolution]
    cy, cx = rng.uniform(3, resolution - 3, size=(2, n, 1, 1))
    radius = rng.uniform(2, 5, size=(n, 1, 1))
    images = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / radius ** 2)
    return images.astype(np.uint8)[:, None]


def write_folder(path, images):
    path.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im[0]).save(path / f"img{i:05d}.png")
    return path
