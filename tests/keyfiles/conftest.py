"""The key file tests use the key vault tests' fixed KEK ring (autouse) and file helpers."""

from tests.keyvault.conftest import add_kek_v2, csv_bytes, factory_rows, test_kek_ring

__all__ = ["add_kek_v2", "csv_bytes", "factory_rows", "test_kek_ring"]
