import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.use_deterministic_algorithms(False)
    yield
