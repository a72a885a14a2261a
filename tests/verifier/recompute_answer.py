#!/usr/bin/env python3
"""An independent recomputation of a credit-registry answer from its public registry log.

Written from the specifications (C2SP tlog-tiles, tlog-checkpoint, signed-note; RFC 9162
section 2.1.1 for the tree hash) and the registry's documented entry format, with the
standard library and `cryptography`, sharing nothing with the registry's own code but
the receipt checks of `verify_receipt.py` beside it. It fetches the registry log's
signed checkpoint, every leaf hash (level-0 tiles) and every entry bundle, checks that
the entries hash to the leaves and the leaves to the checkpoint's root, that the
receipt's `registryLog` head is the root of the log's first `size` entries, then replays
those entries into the list in force at the receipt's `asOf` and checks that this list
gives the receipt's decision and hit listings for its code and domain.

    python3 recompute_answer.py --registry-url https://registry.example/logs/registry \\
        --registry-vkey registry.vkey --vkey answers.vkey receipt.txt
    python3 recompute_answer.py --registry-url … --registry-vkey … --answer-json answer.json

`--answer-json` takes a payload as JSON (its signature is not checked: for answers held
as records rather than receipts). Exit 0 RECOMPUTED (the list gives that answer), 1
INVALID (it does not, or the log does not hold), 2 when the inputs cannot be read or
fetched, 3 NOT RECOMPUTED (the log cannot say: an `asOf` before the last entry replayed,
or entries logged before they named their measures' domain and effect).
"""

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_receipt import Invalid, b64, node, parse_vkey, verify_checkpoint, verify_receipt  # noqa: E402

TILE_WIDTH = 256
# What an effect makes of a partner's answer (domain.md, "Effects"): the strictest wins.
DECISION_OF_EFFECT = {"PROHIBIT": "RESTRICTED", "CONSIDER": "REVIEW", "SUPERVISE": "CLEAR"}
STRICTNESS = {"CLEAR": 0, "REVIEW": 1, "RESTRICTED": 2}


class CannotSay(Exception):
    pass


def instant(text):
    """An RFC 3339 instant (fractions beyond microseconds cut, `Z` allowed)."""
    if not isinstance(text, str):
        raise Invalid(f"not an instant: {text!r}")
    t = text.replace("Z", "+00:00")
    if "." in t:
        head, _, rest = t.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        t = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(t)
    except ValueError:
        raise Invalid(f"not an RFC 3339 instant: {text!r}")


def tile_path(level, index, width):
    """C2SP tlog-tiles: the index in groups of three digits, all but the last with `x`."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index > 0:
        groups.insert(0, f"x{index % 1000:03d}")
        index //= 1000
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{'/'.join(groups)}{partial}"


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def tree_hash(leaves):
    """RFC 9162 section 2.1.1: MTH over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def log_entries(base, vkey):
    """The log's verified leaves and entries, and its checkpoint's size."""
    size, root = verify_checkpoint(fetch(f"{base}/checkpoint").decode(), vkey)
    leaves, entries = [], []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        tile = fetch(f"{base}/{tile_path(0, n, width)}")
        if len(tile) != 32 * width:
            raise Invalid(f"level-0 tile {n} holds {len(tile)} bytes, not {32 * width}")
        leaves += [tile[i : i + 32] for i in range(0, len(tile), 32)]
        bundle = fetch(f"{base}/{tile_path('entries', n, width)}")
        at = 0
        while at < len(bundle):
            length = int.from_bytes(bundle[at : at + 2], "big")
            entries.append(bundle[at + 2 : at + 2 + length])
            at += 2 + length
        if len(entries) != len(leaves):
            raise Invalid(f"entry bundle {n} does not hold {width} entries")
    if tree_hash(leaves) != root:
        raise Invalid("the log's leaf hashes do not make its checkpoint's root")
    for i, (entry, leaf) in enumerate(zip(entries, leaves)):
        if hashlib.sha256(b"\x00" + entry).digest() != leaf:
            raise Invalid(f"entry {i} does not hash to its leaf")
    return leaves, entries, size


def as_of_after(answer, events, what):
    """The answer's asOf; CannotSay when it is before the latest `occurredAt` of `events`
    (what: how the message names that entry)."""
    last_logged = None
    for event in events:
        logged = instant(event["occurredAt"])
        last_logged = logged if last_logged is None else max(last_logged, logged)
    as_of = instant(answer["asOf"])
    if last_logged is not None and as_of < last_logged:
        raise CannotSay(f"asOf {answer['asOf']} is before {what} ({last_logged.isoformat()})")
    return as_of


def decide(answer, latest, as_of):
    """The decision and sorted hits for the answer's code and domain at `as_of`, from
    `latest`, the latest entry of each listing: a listing counts while in force and not
    expired; the strictest effect of its measures in the domain wins."""
    decision, hits = "CLEAR", set()
    for event in latest:
        listing = event["listing"]
        if listing.get("uscc") != answer["uscc"] or event.get("inForce") is not True:
            continue
        expires = listing.get("expires_at")
        if expires is not None and instant(expires) <= as_of:
            continue
        if "measures" not in event:
            raise CannotSay(f"listing {listing['id']} was logged before entries named their measures' effects")
        for measure in event["measures"]:
            if measure["domain"] != answer["domain"]:
                continue
            effect_decision = DECISION_OF_EFFECT[measure["effect"]]
            if effect_decision == "CLEAR":
                continue
            hits.add(int(listing["id"]))
            if STRICTNESS[effect_decision] > STRICTNESS[decision]:
                decision = effect_decision
    return decision, sorted(hits)


def compare(answer, decision, hits, source):
    """Invalid unless the answer says `decision` with `hits` (what `source` gives)."""
    if decision != answer["decision"] or hits != sorted(answer.get("hitListingIds", [])):
        raise Invalid(
            f"{source} answers {decision} with hits {hits}; "
            f"the answer says {answer['decision']} with hits {answer.get('hitListingIds', [])}"
        )


def recompute(answer, leaves, entries, size):
    """The decision and hits the list at the answer's head gives; raises on a mismatch."""
    head = answer.get("registryLog")
    if not head:
        raise CannotSay("the answer names no registry log head")
    head_size = head["size"]
    if head_size > size:
        raise Invalid(f"the answer names {head_size} entries; the log has {size}")
    if tree_hash(leaves[:head_size]) != b64(head["root"]):
        raise Invalid(f"the answer's registry log root is not that of the log's first {head_size} entries")
    events = [json.loads(entry) for entry in entries[:head_size]]
    latest = {event["listing"]["id"]: event for event in events}
    as_of = as_of_after(answer, events, "the last entry replayed")
    decision, hits = decide(answer, latest.values(), as_of)
    compare(answer, decision, hits, "the list at that head")
    return decision, hits, head_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry-url", required=True, help="the public …/logs/registry")
    parser.add_argument("--registry-vkey", required=True, help="the registry log's verifier key file")
    parser.add_argument("--vkey", help="the answer log's verifier key file (with a receipt)")
    parser.add_argument("--answer-json", help="an answer payload as JSON, instead of a receipt")
    parser.add_argument("receipt", nargs="?", help="the receipt file")
    args = parser.parse_args()
    if bool(args.answer_json) == bool(args.receipt) or (args.receipt and not args.vkey):
        print("ERROR: give a receipt with --vkey, or --answer-json", file=sys.stderr)
        return 2
    try:
        with open(args.registry_vkey, encoding="utf-8") as f:
            registry_vkey = f.read()
        if args.answer_json:
            with open(args.answer_json, encoding="utf-8") as f:
                answer = json.load(f)
        else:
            with open(args.vkey, encoding="utf-8") as f:
                answers_vkey = f.read()
            with open(args.receipt, encoding="utf-8") as f:
                receipt = f.read()
    except (OSError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        if not args.answer_json:
            answer, _, _ = verify_receipt(receipt, parse_vkey(answers_vkey))
        base = args.registry_url.rstrip("/")
        leaves, entries, size = log_entries(base, parse_vkey(registry_vkey))
        decision, hits, head_size = recompute(answer, leaves, entries, size)
    except (urllib.error.URLError, OSError) as e:
        print(f"ERROR: fetching the registry log: {e}", file=sys.stderr)
        return 2
    except CannotSay as e:
        print(f"NOT RECOMPUTED: {e}")
        return 3
    except (Invalid, KeyError, TypeError, ValueError, IndexError) as e:
        print(f"INVALID: {e or 'malformed input'}")
        return 1
    print(
        f"RECOMPUTED: the registry log's first {head_size} entries (of {size}) replay to a list "
        f"that answers {decision} for {answer['uscc']} in {answer['domain']} at {answer['asOf']}, hits {hits}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
