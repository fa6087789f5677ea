import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared_data: reads the EuroCon release in ../shared/data/eurocon")
