import pytest
from hub_server import start_hub_server


@pytest.fixture(scope="module")
def hub():
    """A local Hub server for one test module: (its state, its URL)."""
    server, state, url = start_hub_server()
    yield state, url
    server.shutdown()
