#!/usr/bin/env python3
"""An independent verifier of credit-registry receipts (C2SP tlog-proof).

Written from the specifications alone (C2SP tlog-proof, tlog-checkpoint, signed-note;
RFC 9162 section 2.1.3.2 for the inclusion proof), with the standard library and the
`cryptography` package, so that a receipt can be checked with nothing of the registry's
own code: only the answer log's verifier key (GET /logs/answers/vkey).

    python3 verify_receipt.py --vkey answers.vkey receipt.txt

Prints VALID and the receipt's payload (exit 0), or INVALID and why (exit 1); exit 2
when the inputs cannot be read.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = "c2sp.org/tlog-proof@v1"


class Invalid(Exception):
    pass


def b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"not base64: {text!r}")


def parse_vkey(text, key_type=0x01, what="an Ed25519 signed-note key", role="verifier key"):
    """<name>+<hex key id>+base64(key_type || 32-byte Ed25519 key); key_type 0x01 for a
    log's key (signed-note), 0x04 for a witness's (tlog-cosignature, cosignature/v1)."""
    # The key name and id hold no "+"; the base64 key may.
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise Invalid(f"the {role} is not <name>+<id>+<key>")
    name, key_id, key = parts[0], bytes.fromhex(parts[1]), b64(parts[2])
    if len(key) != 33 or key[0] != key_type:
        raise Invalid(f"the {role} is not {what}")
    # Key ID: SHA-256(<name> || "\n" || type || public key)[:4].
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4] != key_id:
        raise Invalid(f"the {role}'s id does not match its name and key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(key[1:])


def split_note(note, not_a_line="a signature line does not start with an em dash"):
    """A signed note's text (up to and including its last newline) and its signature
    lines as (signer name, decoded signature)."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Invalid("the checkpoint is not a signed note")
    text, lines = note[: split + 1], note[split + 2 :]
    signatures = []
    for line in lines.splitlines():
        if not line.startswith("\u2014 "):
            raise Invalid(not_a_line.format(line=line))
        signer, _, sig = line[2:].partition(" ")
        signatures.append((signer, b64(sig)))
    return text, signatures


def verify_checkpoint(note, vkey):
    name, key_id, public = vkey
    text, signatures = split_note(note)
    signed = False
    for sig_name, raw in signatures:
        if sig_name != name or raw[:4] != key_id:
            continue  # another key's signature (a witness): ignored
        try:
            public.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise Invalid("the log's signature on the checkpoint does not hold")
        signed = True
    if not signed:
        raise Invalid("the checkpoint carries no signature of the log's key")
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != name:
        raise Invalid("the checkpoint's origin is not the log's key name")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise Invalid("the checkpoint's size is not a number")
    root = b64(lines[2])
    if len(root) != 32:
        raise Invalid("the checkpoint's root is not a SHA-256 hash")
    return int(lines[1]), root


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_hash, index, size, proof, root):
    """RFC 9162, section 2.1.3.2."""
    if index >= size:
        raise Invalid("the index is outside the tree")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise Invalid("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise Invalid("the inclusion proof does not lead to the checkpoint's root")


def verify_receipt(receipt, vkey):
    lines = receipt.replace("\r\n", "\n").strip("\n").split("\n")
    if not lines or lines[0] != HEADER:
        raise Invalid("the receipt is not a C2SP tlog proof")
    at = 1
    if not lines[at].startswith("extra "):
        raise Invalid("the receipt carries no payload (extra line)")
    payload = b64(lines[at][len("extra ") :])
    at += 1
    if not lines[at].startswith("index "):
        raise Invalid("no index line")
    index_text = lines[at][len("index ") :]
    if not index_text.isdigit() or (index_text != "0" and index_text.startswith("0")):
        raise Invalid("the index is not a number")
    index = int(index_text)
    at += 1
    proof = []
    while lines[at] != "":
        h = b64(lines[at])
        if len(h) != 32:
            raise Invalid("a proof line is not a SHA-256 hash")
        proof.append(h)
        at += 1
    checkpoint = "\n".join(lines[at + 1 :]) + "\n"
    size, root = verify_checkpoint(checkpoint, vkey)
    leaf_hash = hashlib.sha256(b"\x00" + payload).digest()
    verify_inclusion(leaf_hash, index, size, proof, root)
    return json.loads(payload), index, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vkey", required=True, help="the answer log's verifier key file")
    parser.add_argument("receipt", help="the receipt file")
    args = parser.parse_args()
    try:
        with open(args.vkey, encoding="utf-8") as f:
            vkey_text = f.read()
        with open(args.receipt, encoding="utf-8") as f:
            receipt = f.read()
    except OSError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        vkey = parse_vkey(vkey_text)
        payload, index, size = verify_receipt(receipt, vkey)
    except (Invalid, IndexError, ValueError) as e:
        print(f"INVALID: {e or 'malformed receipt'}")
        return 1
    print(f"VALID: entry {index} of a log of {size} entries")
    print(json.dumps(payload, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
