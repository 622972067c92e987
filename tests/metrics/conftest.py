"""Fixtures for the metrics tests (helpers live in metrics_helpers.py)."""
import pytest
from metrics_helpers import TinyGenerator, blob_images, write_folder


@pytest.fixture
def tiny_generator():
    return TinyGenerator()


@pytest.fixture
def real_folder(tmp_path):
    return write_folder(tmp_path / "real", blob_images(80, seed=0))
