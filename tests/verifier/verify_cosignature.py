#!/usr/bin/env python3
"""An independent verifier of witness cosignatures on a checkpoint (C2SP
tlog-cosignature, the Ed25519 type cosignature/v1), written from the specification alone
with the standard library and the `cryptography` package.

    python3 verify_cosignature.py --witness-vkey w1.vkey checkpoint.txt

A witness vkey is <name>+<hex key id>+base64(0x04 || 32-byte Ed25519 key). Prints VALID
and the witness's timestamp (exit 0) when the checkpoint carries a valid cosignature of
that witness, INVALID and why (exit 1) otherwise; exit 2 when the inputs cannot be read.
"""

import argparse
import base64
import binascii
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
    pass


def b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"not base64: {text!r}")


def parse_witness_vkey(text):
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise Invalid("the witness key is not <name>+<id>+<key>")
    name, key_id, key = parts[0], bytes.fromhex(parts[1]), b64(parts[2])
    if len(key) != 33 or key[0] != 0x04:
        raise Invalid("the witness key is not a cosignature/v1 (0x04) Ed25519 key")
    # Key ID: SHA-256(<name> || "\n" || 0x04 || public key)[:4].
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != key_id:
        raise Invalid("the witness key's id does not match its name and key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(key[1:])


def verify(note, vkey):
    name, key_id, public = vkey
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Invalid("the checkpoint is not a signed note")
    text, signatures = note[: split + 1], note[split + 2 :]
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            raise Invalid(f"not a signature line: {line!r}")
        signer, _, sig = line[2:].partition(" ")
        if signer != name:
            continue
        raw = b64(sig)
        if raw[:4] != key_id:
            continue
        # key ID (4) || timestamp (8, big-endian) || Ed25519 signature (64)
        if len(raw) != 4 + 8 + 64:
            raise Invalid("the cosignature is not a timestamped Ed25519 signature")
        timestamp = int.from_bytes(raw[4:12], "big")
        if timestamp > 2**63 - 1:
            raise Invalid("the timestamp exceeds 2^63 - 1")
        message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
        try:
            public.verify(raw[12:], message)
        except InvalidSignature:
            raise Invalid(f"the cosignature of {name} does not verify")
        return timestamp
    raise Invalid(f"the checkpoint carries no cosignature of {name}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--witness-vkey", required=True)
    parser.add_argument("checkpoint")
    args = parser.parse_args()
    try:
        with open(args.witness_vkey, encoding="utf-8") as f:
            vkey_text = f.read()
        with open(args.checkpoint, encoding="utf-8") as f:
            note = f.read()
    except OSError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        vkey = parse_witness_vkey(vkey_text)
        timestamp = verify(note, vkey)
    except Invalid as e:
        print(f"INVALID: {e}")
        return 1
    print(f"VALID: cosigned by {vkey[0]} at {timestamp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
