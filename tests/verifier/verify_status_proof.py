#!/usr/bin/env python3
"""An independent verifier of credit-registry status proofs (credit-registry/status-proof@v1).

Written from the status map's specification (the module documentation of the registry's
`tlog/status_map.rs`: the map of every code's latest listing entries, committed as the
`status-map/v1` extension line of each registry checkpoint) and C2SP signed-note /
tlog-checkpoint, with the standard library and the `cryptography` package, sharing nothing
with the registry's own code but the checks of `verify_receipt.py` and the answer rule of
`recompute_answer.py` beside it. It checks the proof's checkpoint with the registry log's
verifier key, the path from the code's entries (or its absence from its bucket) to the
checkpoint's map root, that the answer names that checkpoint's tree head and the proof's
code, then recomputes the answer's decision and hit listings from the proof's entries alone.

    python3 verify_status_proof.py --registry-vkey registry.vkey --proof proof.json \\
        --receipt receipt.txt --answers-vkey answers.vkey
    python3 verify_status_proof.py --registry-vkey registry.vkey --proof proof.json \\
        --answer-json '{"uscc": …, "domain": …, "asOf": …, "decision": …, …}'

`--answer-json` takes a payload as JSON text, or the name of a file holding it (its
signature is not checked: for answers held as records, or altered by a test). Exit 0
PROVEN (the map at the answer's head gives that answer), 1 INVALID (the proof does not
hold, or gives another answer), 2 when the inputs cannot be read, 3 NOT RECOMPUTED (the
entries cannot say: an `asOf` before the latest of them, or entries logged before they
named their measures' domain and effect, or an answer that names no registry log head).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recompute_answer import CannotSay, as_of_after, compare, decide  # noqa: E402
from verify_receipt import Invalid, b64, parse_vkey, split_note, verify_checkpoint, verify_receipt  # noqa: E402

FORMAT = "credit-registry/status-proof@v1"
EXTENSION_PREFIX = "status-map/v1 "
FIELDS = {"format", "uscc", "bucket", "leaves", "entries", "siblings", "checkpoint"}
DEPTH = 16
LEAF, BUCKET, NODE = b"\x10", b"\x11", b"\x12"


def sha256(*parts):
    return hashlib.sha256(b"".join(parts)).digest()


def hash32(text, what):
    if not isinstance(text, str):
        raise Invalid(f"{what} is not a base64 text")
    h = b64(text)
    if len(h) != 32:
        raise Invalid(f"{what} is not a SHA-256 hash")
    return h


def bucket_of(key):
    return int.from_bytes(key[:2], "big")


def map_root_of(checkpoint, vkey):
    """The checkpoint's size, root and map root, once its signature holds."""
    size, root = verify_checkpoint(checkpoint, vkey)
    text, _ = split_note(checkpoint)
    # Extension lines follow the origin, size and root lines.
    found = [line[len(EXTENSION_PREFIX) :] for line in text.split("\n")[3:] if line.startswith(EXTENSION_PREFIX)]
    if not found:
        raise Invalid("the checkpoint carries no status map")
    if len(found) > 1:
        raise Invalid("the checkpoint carries two status-map lines")
    return size, root, hash32(found[0], "the checkpoint's map root")


def listing_id(event):
    text = event["listing"]["id"]
    if not isinstance(text, str) or not re.fullmatch(r"-?[0-9]+", text):
        raise Invalid(f"an entry's listing id {text!r} is not a decimal number")
    return int(text)


def verify_path(proof, map_root):
    """The code's entries (parsed, by listing id) once the proof's path leads to map_root."""
    if not isinstance(proof, dict) or set(proof) != FIELDS:
        raise Invalid(f"the proof's fields are not {sorted(FIELDS)}")
    if proof["format"] != FORMAT:
        raise Invalid(f"the proof's format is {proof['format']!r}, not {FORMAT}")
    uscc, bucket = proof["uscc"], proof["bucket"]
    if not isinstance(uscc, str) or not isinstance(bucket, int) or isinstance(bucket, bool):
        raise Invalid("the proof's uscc is not a text or its bucket not a number")
    key = sha256(uscc.encode("utf-8"))
    if bucket != bucket_of(key):
        raise Invalid(f"bucket {bucket} is not the bucket of {uscc} ({bucket_of(key)})")
    siblings = [hash32(s, "a sibling") for s in proof["siblings"]]
    if len(siblings) != DEPTH:
        raise Invalid(f"the proof has {len(siblings)} siblings, not {DEPTH}")
    leaves = []
    for leaf in proof["leaves"]:
        if not isinstance(leaf, dict) or set(leaf) != {"key", "hash"}:
            raise Invalid("a leaf is not {key, hash}")
        leaves.append((hash32(leaf["key"], "a leaf's key"), hash32(leaf["hash"], "a leaf's hash")))
    if any(a[0] >= b[0] for a, b in zip(leaves, leaves[1:])):
        raise Invalid("the bucket's codes are not in strict key order")
    for k, _ in leaves:
        if bucket_of(k) != bucket:
            raise Invalid(f"key {k.hex()} is not in bucket {bucket}")

    events, entry_hashes, last_id = [], [], None
    for text in proof["entries"]:
        if not isinstance(text, str):
            raise Invalid("an entry is not a base64 text")
        raw = b64(text)
        event = json.loads(raw)
        if not isinstance(event, dict) or not isinstance(event.get("listing"), dict):
            raise Invalid("an entry names no listing")
        if event["listing"].get("uscc") != uscc:
            raise Invalid(f"an entry describes a listing of {event['listing'].get('uscc')}, not {uscc}")
        this_id = listing_id(event)
        if last_id is not None and this_id <= last_id:
            raise Invalid("the entries are not in strict listing order")
        last_id = this_id
        events.append(event)
        entry_hashes.append(sha256(b"\x00", raw))  # RFC 6962 leaf hash

    shown = [h for k, h in leaves if k == key]
    if events and not shown:
        raise Invalid(f"entries are given, but {uscc} is not in its bucket")
    if shown and not events:
        raise Invalid(f"{uscc} is in its bucket, but its entries are not given")
    if shown and shown[0] != sha256(LEAF, key, *entry_hashes):
        raise Invalid(f"the entries given are not the leaf of {uscc} in the map")

    h = sha256(BUCKET, *(k + l for k, l in leaves))
    position = bucket
    for sibling in siblings:  # the bucket's sibling first, lowest bit first: 0 = left
        h = sha256(NODE, h, sibling) if position & 1 == 0 else sha256(NODE, sibling, h)
        position >>= 1
    if h != map_root:
        raise Invalid("the proof's path does not lead to the checkpoint's map root")
    return events


def check_head(answer, uscc, size, root):
    if not isinstance(answer, dict):
        raise Invalid("the answer is not a JSON object")
    if answer.get("uscc") != uscc:
        raise Invalid(f"the answer is for {answer.get('uscc')}, the proof for {uscc}")
    head = answer.get("registryLog")
    if not head:
        raise CannotSay("the answer names no registry log head")
    if head["size"] != size or b64(head["root"]) != root:
        raise Invalid(
            f"the answer names the registry log head ({head['size']}, {head['root']}); "
            f"the proof's checkpoint is ({size}, {base64.b64encode(root).decode()})"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry-vkey", required=True, help="the registry log's verifier key file")
    parser.add_argument("--proof", required=True, help="the status proof (JSON) file")
    parser.add_argument("--receipt", help="the answer's receipt file (with --answers-vkey)")
    parser.add_argument("--answers-vkey", help="the answer log's verifier key file")
    parser.add_argument("--answer-json", help="an answer payload as JSON (or a file of it), instead of a receipt")
    args = parser.parse_args()
    if bool(args.answer_json) == bool(args.receipt) or bool(args.receipt) != bool(args.answers_vkey):
        print("ERROR: give --receipt with --answers-vkey, or --answer-json", file=sys.stderr)
        return 2
    try:
        with open(args.registry_vkey, encoding="utf-8") as f:
            registry_vkey = f.read()
        with open(args.proof, encoding="utf-8") as f:
            proof = json.load(f)
        if args.answer_json:
            text = args.answer_json
            if not text.lstrip().startswith("{"):
                with open(text, encoding="utf-8") as f:
                    text = f.read()
            answer = json.loads(text)
        else:
            with open(args.answers_vkey, encoding="utf-8") as f:
                answers_vkey = f.read()
            with open(args.receipt, encoding="utf-8") as f:
                receipt = f.read()
    except (OSError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        if not isinstance(proof, dict) or not isinstance(proof.get("checkpoint"), str):
            raise Invalid("the proof carries no checkpoint")
        size, root, map_root = map_root_of(proof["checkpoint"], parse_vkey(registry_vkey))
        events = verify_path(proof, map_root)
        if not args.answer_json:
            answer, _, _ = verify_receipt(receipt, parse_vkey(answers_vkey))
        check_head(answer, proof["uscc"], size, root)
        as_of = as_of_after(answer, events, "the latest entry of the code's listings")
        decision, hits = decide(answer, events, as_of)
        compare(answer, decision, hits, "the map at that head")
    except CannotSay as e:
        print(f"NOT RECOMPUTED: {e}")
        return 3
    except (Invalid, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        print(f"INVALID: {e or 'malformed input'}")
        return 1
    print("PROVEN")
    print(
        f"{answer['uscc']} {answer['domain']} at {answer['asOf']}: {decision}, hits {hits}, "
        f"from {len(events)} entries in the map of the registry log's first {size} entries"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
