"""The key-file tests share the factory-file helpers of tests/keyvault (the KEK ring comes from
the test settings: tests/settings.py)."""

from tests.keyvault.conftest import add_kek_v2, csv_bytes, factory_rows

__all__ = ["add_kek_v2", "csv_bytes", "factory_rows"]
