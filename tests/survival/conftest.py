import pytest
import torch
from survival_planted import planted_setup


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: several threads per op only fight over a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def planted():
    """Every latent a function of the current token."""
    return planted_setup()


@pytest.fixture(scope="module")
def context_planted():
    """Latents 0-15 a function of the current token, 16-31 of the previous one."""
    return planted_setup(context=True)
