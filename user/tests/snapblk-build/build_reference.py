#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Independent reference implementation of Documentation/format.md.

Written from the specification alone (it shares no code with user/), with
Python's hashlib/hmac and the 'cryptography' package for AES.  Used by
build_reference.sh to check that snapblk-build's output can be read by
another implementation, and to print the known-answer test vectors.

  build_reference.py vectors
  build_reference.py read MANIFEST KEYFILE [STORE]   # prints a summary
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"SNAPBLKM"
HDR = struct.Struct("<8sIIIIQ12sI")        # 48 bytes
BODY = struct.Struct("<QIIQII32s16s")      # 80 bytes
ENTRY = struct.Struct("<32s32sII")         # 72 bytes
F_ZERO = 1


def sha256(b):
    return hashlib.sha256(b).digest()


def hmac256(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()


DEFAULT_SECRET = sha256(b"snapblk default secret v1")


def secret_id(secret):
    return hmac256(secret, b"snapblk secret id v1")[:16]


def chunk_seal(secret, pt):
    key = hmac256(secret, pt)
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    ct = enc.update(pt) + enc.finalize()
    return key, ct, sha256(ct)


def chunk_open(key, ct):
    dec = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).decryptor()
    return dec.update(ct) + dec.finalize()


def image_id(image_size, chunk_size, entries):
    h = hashlib.sha256(b"snapblk-image-v1")
    h.update(struct.pack("<QIQ", image_size, chunk_size, len(entries)))
    for e in entries:
        h.update(e)
    return h.digest()


def seal(tenant_key, image_size, chunk_size, entries, sid):
    iid = image_id(image_size, chunk_size, entries)
    body = BODY.pack(image_size, chunk_size, 0, len(entries), ENTRY.size,
                     0, iid, sid) + b"".join(entries)
    enc_key = hmac256(tenant_key, b"snapblk manifest key v1")
    nonce_key = hmac256(tenant_key, b"snapblk manifest nonce v1")
    nonce = hmac256(nonce_key, body)[:12]
    hdr = HDR.pack(MAGIC, 1, 0, HDR.size, 0, len(body), nonce, 0)
    return hdr + AESGCM(enc_key).encrypt(nonce, body, hdr), iid


def unseal(tenant_key, data):
    if data[:8] != MAGIC[:len(data[:8])] or not data:
        raise ValueError("not a snapblk manifest")
    if len(data) < HDR.size:
        raise ValueError("truncated")
    magic, ver, flags, hlen, r0, blen, nonce, r1 = HDR.unpack_from(data)
    if ver != 1:
        raise ValueError("version")
    if hlen != HDR.size or flags or r0 or r1:
        raise ValueError("malformed header")
    if len(data) != HDR.size + blen + 16:
        raise ValueError("length")
    enc_key = hmac256(tenant_key, b"snapblk manifest key v1")
    body = AESGCM(enc_key).decrypt(nonce, data[HDR.size:], data[:HDR.size])
    size, csize, bflags, count, elen, res, iid, sid = BODY.unpack_from(body)
    assert csize & (csize - 1) == 0 and 65536 <= csize <= 4 << 20
    # res is the layout (SNAPBLK_LAYOUT_*): informative, any value
    assert bflags == 0 and elen == ENTRY.size
    assert count == -(-size // csize) and len(body) == BODY.size + count * 72
    entries = [body[BODY.size + i * 72:BODY.size + (i + 1) * 72]
               for i in range(count)]
    assert image_id(size, csize, entries) == iid, "image id"
    return size, csize, entries, iid, sid


def read_key(path):
    raw = open(path, "rb").read()
    if len(raw) == 32:
        return raw
    return bytes.fromhex(raw.decode().strip())


def pattern(n):
    return bytes(i % 251 for i in range(n))


def vectors():
    p1 = pattern(65536)
    custom = bytes(range(32))
    tenant = bytes(range(0x40, 0x60))
    out = {}
    out["default_secret"] = DEFAULT_SECRET.hex()
    out["default_secret_id"] = secret_id(DEFAULT_SECRET).hex()
    key, ct, addr = chunk_seal(DEFAULT_SECRET, p1)
    out["p1_key"] = key.hex()
    out["p1_ct16"] = ct[:16].hex()
    out["p1_ct_last16"] = ct[-16:].hex()
    out["p1_addr"] = addr.hex()
    key2, _, addr2 = chunk_seal(custom, p1)
    out["custom_secret_id"] = secret_id(custom).hex()
    out["p1_custom_key"] = key2.hex()
    out["p1_custom_addr"] = addr2.hex()
    # Manifest: 200000 bytes in 64 KiB chunks: P1, zero, P1, 3392 x 0xab.
    last = b"\xab" * (200000 - 3 * 65536) + bytes(4 * 65536 - 200000)
    k3, _, a3 = chunk_seal(DEFAULT_SECRET, last)
    e1 = ENTRY.pack(addr, key, 0, 0)
    ez = ENTRY.pack(bytes(32), bytes(32), F_ZERO, 0)
    e3 = ENTRY.pack(a3, k3, 0, 0)
    data, iid = seal(tenant, 200000, 65536, [e1, ez, e1, e3],
                     secret_id(DEFAULT_SECRET))
    out["last_addr"] = a3.hex()
    out["manifest_image_id"] = iid.hex()
    out["manifest_nonce"] = data[32:44].hex()
    out["manifest_len"] = str(len(data))
    out["manifest_sha256"] = sha256(data).hex()
    out["manifest_tag"] = data[-16:].hex()
    for k, v in out.items():
        print(f"{k} {v}")


def read(manifest, keyfile, store=None):
    size, csize, entries, iid, sid = unseal(read_key(keyfile),
                                            open(manifest, "rb").read())
    zero = sum(1 for e in entries if ENTRY.unpack(e)[2] & F_ZERO)
    print(f"image_id {iid.hex()}")
    print(f"image_size {size}")
    print(f"chunk_size {csize}")
    print(f"chunks {len(entries)}")
    print(f"zero {zero}")
    print(f"secret_id {sid.hex()}")
    if store is None:
        return 0
    bad = 0
    default = secret_id(DEFAULT_SECRET) == sid
    for e in entries:
        addr, key, flags, _ = ENTRY.unpack(e)
        if flags & F_ZERO:
            continue
        h = addr.hex()
        try:
            ct = open(f"{store}/{h[:2]}/{h}", "rb").read()
        except OSError:
            bad += 1
            continue
        if len(ct) != csize or sha256(ct) != addr:
            bad += 1
            continue
        pt = chunk_open(key, ct)
        if default and hmac256(DEFAULT_SECRET, pt) != key:
            bad += 1
    print(f"bad {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["vectors"]:
        vectors()
    elif sys.argv[1:2] == ["read"] and len(sys.argv) in (4, 5):
        sys.exit(read(*sys.argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
