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
import os
import sys

from cryptography.exceptions import InvalidSignature

# The note and key parsing of the receipt verifier beside this file (the same
# specifications: signed-note keys and signature lines).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_receipt import Invalid, parse_vkey, split_note  # noqa: E402


def parse_witness_vkey(text):
    return parse_vkey(
        text,
        key_type=0x04,
        what="a cosignature/v1 (0x04) Ed25519 key",
        role="witness key",
    )


def verify(note, vkey):
    name, key_id, public = vkey
    text, signatures = split_note(note, not_a_line="not a signature line: {line!r}")
    for signer, raw in signatures:
        if signer != name or raw[:4] != key_id:
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
