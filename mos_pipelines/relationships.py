"""The relationship graph between customers and accounts: typed, weighted edges, each with its evidence.

``build_edges(contacts, employers, notes)`` returns one row per edge:

- ``works_at`` (customer → account, weight 1): the account of the customer's golden record.
- ``colleague`` (customer — customer, stored once with source < target): same current account; weight 1 up to
  10 contacts at the account, 10/n above; accounts with more than ``max_account_size`` contacts get no pairs
  (counted in ``skipped``: a pair list that size says nothing).
- ``reports_to`` / ``manages`` (directed, both stored): from titles, the nearest more senior contact of the same
  function (persona) at the account, weight 0.6 shared among the candidates of that level; from notes ("reports to
  Dana", "her boss Dana"), weight 0.9, naming a colleague by first name.
- ``mentioned_with`` (customer → customer): a note about the customer names a colleague by first name; weight grows
  with the number of notes (0.5, 0.75, 1).
- ``introduced_by`` (customer → customer): a note says the customer was introduced or referred by a colleague.
- ``same_buying_group`` (customer — customer): both engaged contacts of the account's buying group with different
  personas (dim_account_buying_groups' notion of an engaged contact).
- ``former_colleague`` (customer — customer): the customer's CRM records name an earlier account than the current
  one (a person who moved company), and the other customer is at that earlier account now; weight 0.5.

Names in notes resolve only among colleagues at the same account (a first name alone is too common to resolve
further). Plain Python over data frames: the dbt model ``customer_relationships`` calls it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.gcpause import with_collector_paused

COLUMNS = (
    "edge_id",
    "source_id",
    "source_kind",
    "relationship",
    "target_id",
    "target_kind",
    "weight",
    "evidence",
    "evidence_source",
    "note_id",
)
RELATIONSHIPS = (
    "works_at",
    "colleague",
    "reports_to",
    "manages",
    "mentioned_with",
    "introduced_by",
    "same_buying_group",
    "former_colleague",
)
LEVEL = {
    "individual": 1,
    "individual_contributor": 1,
    "manager": 2,
    "head": 3,
    "director": 3,
    "vp": 4,
    "c_level": 5,
}
REPORTS_TO = re.compile(
    r"\breports? (?:in)?to (?P<a>[A-Z][a-z]+)\b|\b(?P<b>[A-Z][a-z]+) is (?:his|her|their) (?:boss|manager|lead)\b|"
    r"\b(?:his|her|their) (?:boss|manager|line manager),? (?P<c>[A-Z][a-z]+)\b"
)
INTRODUCED = re.compile(
    r"\b(?:intro(?:duced)?|referred|referral|warm intro) (?:by|from|via|through) (?P<a>[A-Z][a-z]+)\b|"
    r"\b(?P<b>[A-Z][a-z]+) (?:introduced|referred) (?:us|me|them)\b",
    re.I,
)


@dataclass
class Edges:
    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> how many


def _edge(
    source: str,
    relationship: str,
    target: str,
    weight: float,
    evidence: str,
    evidence_source: str,
    note_id: str | None = None,
    target_kind: str = "customer",
) -> dict[str, Any]:
    key = f"{source}|{relationship}|{target}|{evidence_source}|{note_id or ''}"
    return {
        "edge_id": hashlib.md5(key.encode()).hexdigest(),
        "source_id": source,
        "source_kind": "customer",
        "relationship": relationship,
        "target_id": target,
        "target_kind": target_kind,
        "weight": round(float(weight), 4),
        "evidence": evidence[:300],
        "evidence_source": evidence_source,
        "note_id": note_id,
    }


def _edge_frame(
    relationship: str,
    evidence_source: str,
    *,
    source_id: list[str],
    target_id: list[str],
    weight: list[float],
    evidence: list[str],
) -> pd.DataFrame:
    """Many customer → customer edges of one kind at once, as ``_edge`` makes them one by one (the colleague pairs:
    most edges of the graph, 724k at 100k people)."""
    keys = [f"{a}|{relationship}|{b}|{evidence_source}|" for a, b in zip(source_id, target_id, strict=True)]
    frame = pd.DataFrame(
        {
            "edge_id": [hashlib.md5(k.encode()).hexdigest() for k in keys],
            "source_id": source_id,
            "source_kind": "customer",
            "relationship": relationship,
            "target_id": target_id,
            "target_kind": "customer",
            "weight": pd.Series(weight, dtype="float64"),  # rounded to 4 places by the caller, as _edge does
            "evidence": [text[:300] for text in evidence],
            "evidence_source": evidence_source,
            "note_id": None,
        },
        columns=list(COLUMNS),
    )
    return frame


def _present(value: Any) -> bool:
    return value is not None and value == value and str(value).strip() != ""


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """``frame.to_dict("records")``, column by column (``tolist`` gives the same Python values, four times faster)."""
    if frame is None or frame.empty:
        return []
    names = [str(c) for c in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*(frame[c].tolist() for c in frame.columns), strict=True)]


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``frame.sort_values(by)`` for text columns, the order found by DuckDB (pandas factorizes and sorts each object
    column on one core: 3.4 s for the 724k edges at 100k people). The same order: DuckDB compares text by its UTF-8
    bytes, which is Python's code point order."""
    keys = frame[by].assign(_row=np.arange(len(frame)))
    with duckdb.connect() as con:
        con.register("edge_keys", keys)
        order = con.execute(f"select _row from edge_keys order by {', '.join(by)}").fetchnumpy()["_row"]
    return frame.iloc[order].reset_index(drop=True)


@with_collector_paused
def build_edges(
    contacts: pd.DataFrame,
    employers: pd.DataFrame | None = None,
    notes: pd.DataFrame | None = None,
    *,
    manual: pd.DataFrame | None = None,
    max_account_size: int = 50,
) -> Edges:
    """Every edge (see the module docstring).

    ``contacts``: customer_id, first_name, account_key, company, job_title, persona, seniority, is_engaged (one row
    per customer). ``employers``: customer_id, account_key, company, seen_at (one row per CRM record; the newest is
    the current employer). ``notes``: customer_id, note_id, note_text. ``manual``: edges people set through the CRM
    API (from_customer_id, relationship_type, to_customer_id, weight, evidence, updated_by), kept as given with
    evidence source ``manual``; an end that is not a known customer (erased, or not built yet) is skipped.
    """
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = defaultdict(int)
    people = {str(c["customer_id"]): c for c in _records(contacts) if _present(c.get("customer_id"))}
    accounts: dict[str, list[str]] = defaultdict(list)
    for cid, c in people.items():
        if _present(c.get("account_key")):
            accounts[str(c["account_key"])].append(cid)
            company = c.get("company") if _present(c.get("company")) else c["account_key"]
            rows.append(
                _edge(
                    cid,
                    "works_at",
                    str(c["account_key"]),
                    1.0,
                    f"works at {company}",
                    "golden_record",
                    target_kind="account",
                )
            )
        else:
            skipped["customers without an account"] += 1
    pairs: dict[str, list[Any]] = {"source_id": [], "target_id": [], "weight": [], "evidence": []}
    for account, members in accounts.items():
        members.sort()
        n = len(members)
        if n > max_account_size:
            skipped[f"accounts over {max_account_size} contacts (no pairs)"] += 1
            continue
        company = people[members[0]].get("company") or account
        both = list(itertools.combinations(members, 2))
        pairs["source_id"] += [a for a, _ in both]
        pairs["target_id"] += [b for _, b in both]
        pairs["weight"] += [round(1.0 if n <= 10 else 10.0 / n, 4)] * len(both)
        pairs["evidence"] += [f"both at {company}"] * len(both)
        rows.extend(_titles(members, people))
        rows.extend(_buying_group(members, people))
    rows.extend(_former(people, accounts, _records(employers), max_account_size, skipped))
    rows.extend(_from_notes(people, accounts, _records(notes)))
    rows.extend(_manual(people, _records(manual), skipped))
    frame = pd.concat(
        [pd.DataFrame(rows, columns=list(COLUMNS)), _edge_frame("colleague", "golden_record", **pairs)],
        ignore_index=True,
    ).drop_duplicates("edge_id")
    frame = _sorted(frame, ["source_id", "relationship", "target_id", "edge_id"])
    return Edges(frame, dict(skipped))


def _manual(people: dict[str, dict], edges: list[dict[str, Any]], skipped: dict[str, int]) -> Iterable[dict[str, Any]]:
    for e in edges:
        a, b, kind = str(e.get("from_customer_id")), str(e.get("to_customer_id")), e.get("relationship_type")
        if a not in people or b not in people or kind not in RELATIONSHIPS or a == b:
            skipped["manual edges naming no known customer or type"] += 1
            continue
        weight = float(e["weight"]) if _present(e.get("weight")) else 1.0
        who = e.get("updated_by") if _present(e.get("updated_by")) else "the CRM API"
        text = str(e["evidence"]) if _present(e.get("evidence")) else f"set by {who}"
        yield _edge(a, kind, b, weight, text, "manual")


def _titles(members: list[str], people: dict[str, dict]) -> Iterable[dict[str, Any]]:
    by_persona: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for cid in members:
        c = people[cid]
        level = LEVEL.get(str(c.get("seniority") or ""))
        if level and _present(c.get("persona")) and c["persona"] not in ("unknown", "executive"):
            by_persona[str(c["persona"])].append((level, cid))
    for persona, ranked in by_persona.items():
        for level, cid in ranked:
            above = sorted({lv for lv, _ in ranked if lv > level})
            if not above:
                continue
            bosses = [b for lv, b in ranked if lv == above[0]]
            for boss in bosses:
                evidence = (
                    f"title {people[cid].get('job_title')!r} is one level below {people[boss].get('job_title')!r} "
                    f"({persona})"
                )
                weight = 0.6 / len(bosses)
                yield _edge(cid, "reports_to", boss, weight, evidence, "job_title")
                yield _edge(boss, "manages", cid, weight, evidence, "job_title")


def _buying_group(members: list[str], people: dict[str, dict]) -> Iterable[dict[str, Any]]:
    engaged = [
        cid
        for cid in members
        if bool(people[cid].get("is_engaged"))
        and _present(people[cid].get("persona"))
        and people[cid]["persona"] != "unknown"
    ]
    for i, a in enumerate(engaged):
        for b in engaged[i + 1 :]:
            pa, pb = people[a]["persona"], people[b]["persona"]
            if pa != pb:
                yield _edge(
                    a, "same_buying_group", b, 1.0, f"engaged {pa} and {pb} at the same account", "buying_group"
                )


def _former(
    people: dict[str, dict],
    accounts: dict[str, list[str]],
    employers: list[dict[str, Any]],
    max_account_size: int,
    skipped: dict[str, int],
) -> Iterable[dict[str, Any]]:
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in employers:
        if _present(r.get("customer_id")) and _present(r.get("account_key")):
            history[str(r["customer_id"])].append(r)
    for cid, records in history.items():
        current = people.get(cid, {}).get("account_key")
        if not _present(current):
            continue
        seen = sorted(
            records, key=lambda r: pd.Timestamp(r["seen_at"]) if _present(r.get("seen_at")) else pd.Timestamp.min
        )
        earlier = {str(r["account_key"]): r for r in seen if str(r["account_key"]) != str(current)}
        for old, record in earlier.items():
            others = [o for o in accounts.get(old, []) if o != cid]
            if len(others) > max_account_size:
                skipped[f"former accounts over {max_account_size} contacts (no pairs)"] += 1
                continue
            evidence = (
                f"a CRM record names {record.get('company') or old}; now at {people[cid].get('company') or current}"
            )
            for other in others:
                a, b = sorted((cid, other))
                yield _edge(a, "former_colleague", b, 0.5, evidence, "crm_history")


def _from_notes(
    people: dict[str, dict], accounts: dict[str, list[str]], notes: list[dict[str, Any]]
) -> Iterable[dict[str, Any]]:
    mentions: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    named: dict[str, dict[str, list[str]]] = {}  # account -> first name (lower case) -> its members, built once
    for note in notes:
        cid = str(note.get("customer_id") or "")
        text = note.get("note_text")
        if cid not in people or not isinstance(text, str) or not _present(people[cid].get("account_key")):
            continue
        own = str(people[cid].get("first_name") or "").strip().lower()
        account = str(people[cid]["account_key"])
        if account not in named:
            by_name: dict[str, list[str]] = defaultdict(list)
            for other in accounts[account]:
                name = str(people[other].get("first_name") or "").strip()
                if len(name) >= 2:
                    by_name[name.lower()].append(other)
            named[account] = by_name
        colleagues = {
            name: others
            for name, members in named[account].items()
            if name != own and (others := [o for o in members if o != cid])
        }
        if not colleagues:
            continue
        note_id = str(note.get("note_id"))
        for m in re.finditer(r"\b[A-Z][a-z]+\b", text):
            for other in colleagues.get(m.group(0).lower(), []):
                mentions[(cid, other)].append((note_id, _quote(text, m.start(), m.end())))
        for pattern, relationship, weight in ((REPORTS_TO, "reports_to", 0.9), (INTRODUCED, "introduced_by", 0.9)):
            for m in pattern.finditer(text):
                name = next(g for g in m.groups() if g)
                for other in colleagues.get(name.lower(), []):
                    quote = _quote(text, m.start(), m.end())
                    yield _edge(cid, relationship, other, weight, quote, "note", note_id)
                    if relationship == "reports_to":
                        yield _edge(other, "manages", cid, weight, quote, "note", note_id)
    for (cid, other), found in mentions.items():
        notes_n = len({n for n, _ in found})
        weight = min(1.0, 0.25 + 0.25 * notes_n)  # 1 note 0.5, 2 notes 0.75, 3 or more 1
        first_note, quote = sorted(found)[-1]
        evidence = f"{quote} ({notes_n} note{'s' if notes_n > 1 else ''})"
        yield _edge(cid, "mentioned_with", other, weight, evidence, "note", first_note)


def _quote(text: str, start: int, end: int, pad: int = 40) -> str:
    lo, hi = max(0, start - pad), min(len(text), end + pad)
    return ("…" if lo else "") + re.sub(r"\s+", " ", text[lo:hi]).strip() + ("…" if hi < len(text) else "")
