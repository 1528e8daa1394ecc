"""Independent implementation of the cookie seal format v1, to check the known-answer
vector in session-runtime/src/cookie_store/seal.rs against code that shares nothing with
ours. Needs `pip install cryptography`. Run: python3 cookie_v1.py"""
import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def msgpack_uint(v):
    if v < 128:
        return bytes([v])
    if v < 2**8:
        return b"\xcc" + bytes([v])
    if v < 2**16:
        return b"\xcd" + struct.pack(">H", v)
    if v < 2**32:
        return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)


def seal(master, purpose, salt, session_id, created, expires, record):
    prk = hmac.new(b"session-runtime cookie-store key v1", master, hashlib.sha256).digest()
    info = b"session-runtime cookie v1" + struct.pack(">I", len(purpose)) + purpose + salt + b"\x01"
    key = hmac.new(prk, info, hashlib.sha256).digest()
    plaintext = (
        b"\x95"
        + b"\xc4" + bytes([len(session_id)]) + session_id
        + msgpack_uint(created)
        + msgpack_uint(expires)
        + b"\xc0"  # no absolute deadline
        + b"\xc4" + bytes([len(record)]) + record
    )
    sealed = AESGCM(key).encrypt(salt[:12], plaintext, b"\x01" + purpose)
    return base64.urlsafe_b64encode(b"\x01" + salt + sealed).rstrip(b"=").decode()


if __name__ == "__main__":
    print(seal(
        master=bytes([0x42]) * 64,
        purpose=b"session",
        salt=bytes([0x2A]) * 16,
        session_id=bytes([7]) * 24,
        created=1_700_000_000_000,
        expires=4_000_000_000_000,
        record=bytes([0x92, 0x01, 0x81, 0xA1, ord("v"), 0xC4, 0x01, 0x05]),
    ))
