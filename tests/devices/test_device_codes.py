"""Device codes are stored as keyed hashes bound to the serial, never plain."""

from __future__ import annotations


def test_device_code_hashes_are_keyed_and_bound_to_the_serial(settings):
    import hashlib
    import hmac as std_hmac

    from devices.device_codes import check_device_code, hash_device_code

    pepper = hashlib.sha256(b"kamkeys device code pepper|" + settings.SECRET_KEY.encode()).digest()
    expected = std_hmac.new(pepper, b"00012345|42", hashlib.sha256).hexdigest()
    assert hash_device_code("00012345", "42") == "h1$" + expected
    assert check_device_code("00012345", "42", "h1$" + expected)
    assert not check_device_code("00012346", "42", "h1$" + expected)
