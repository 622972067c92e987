"""Datasets: the training-data reader, the infinite sampler and the dataset tool."""
from stylegan.data.dataset import ImageDataset, dataset_fingerprint
from stylegan.data.dataset_tool import ConversionSummary, convert_dataset
from stylegan.data.sampler import InfiniteSampler

__all__ = ["ImageDataset", "InfiniteSampler", "dataset_fingerprint", "convert_dataset", "ConversionSummary"]
