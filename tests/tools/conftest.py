"""Fixtures for the tools tests."""
import pytest

from stylegan.io.load import load_generator

from official_helpers import OFFICIAL_SNAPSHOT


@pytest.fixture(scope="module")
def G():
    """The official tiny16 snapshot's G_ema (a 16x16 network with real structure)."""
    return load_generator(OFFICIAL_SNAPSHOT)
