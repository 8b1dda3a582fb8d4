"""A small graph around one customer (``marts.customer_relationships``), drawn on the server as inline SVG.

``neighbourhood`` turns the edges touching a customer into its 1-hop neighbours as the customer sees them (an edge
stored in the other direction is read back: "Ben manages Ana" is Ana's "reports to" tie), merges the ties per
neighbour, ranks neighbours by the sum of their ties' weights and keeps the strongest ``limit``. ``masked`` hides
names (initials) and note quotes from a reader without ``see_pii``. ``radial_layout`` places the neighbours on a
circle, strongest at the top, clockwise; ``svg`` draws it, every line and node with a ``<title>`` (hover) and every
customer node a link to its own page. Plain Python: no FastAPI, no warehouse.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from mos_pipelines.access import mask_name

# relationship -> (label from the source's side, label from the target's side)
LABELS = {
    "works_at": ("works at", "employs"),
    "colleague": ("colleague", "colleague"),
    "reports_to": ("reports to", "manages"),
    "manages": ("manages", "reports to"),
    "mentioned_with": ("mentioned with", "mentioned by"),
    "introduced_by": ("introduced by", "introduced"),
    "same_buying_group": ("same buying group", "same buying group"),
    "former_colleague": ("former colleague", "former colleague"),
}
NOTE_HIDDEN = "from a CRM note (quote hidden: it may name people)"
# evidence written by people (a note's quote, the text given with an edge set through the CRM API) may name people
FREE_TEXT = {"note": NOTE_HIDDEN, "manual": "set by hand in the CRM (text hidden: it may name people)"}


@dataclass(frozen=True)
class Tie:
    """One edge as the centre customer reads it."""

    label: str
    weight: float
    evidence: str
    evidence_source: str
    note_id: str | None = None


@dataclass
class Neighbour:
    id: str
    kind: str  # customer | account
    label: str
    ties: list[Tie] = field(default_factory=list)

    @property
    def strength(self) -> float:
        return round(sum(t.weight for t in self.ties), 4)

    @property
    def href(self) -> str | None:
        return f"/customers/{quote(self.id, safe='')}" if self.kind == "customer" else None


@dataclass
class Neighbourhood:
    centre_id: str
    centre_label: str
    shown: list[Neighbour]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


def _name(customer_id: str, names: Mapping[str, str | None]) -> str:
    name = names.get(customer_id)
    return name.strip() if isinstance(name, str) and name.strip() else customer_id


def neighbourhood(
    centre_id: str,
    edges: Iterable[Mapping[str, Any]],
    names: Mapping[str, str | None],
    accounts: Mapping[str, str | None] | None = None,
    limit: int = 12,
) -> Neighbourhood:
    """The centre's neighbours, strongest first (ties: sum of weights; then label, id), the first ``limit`` kept.

    ``edges``: rows of customer_relationships touching the centre. ``names``: customer id -> display name;
    ``accounts``: account key -> company name (else the company a works_at edge's evidence names)."""
    accounts = accounts or {}
    found: dict[tuple[str, str], Neighbour] = {}
    seen: set[tuple[str, str, str, str, str | None]] = set()
    for edge in edges:
        relationship = str(edge.get("relationship"))
        source, target = str(edge.get("source_id")), str(edge.get("target_id"))
        if source == centre_id:
            other, kind, side = target, str(edge.get("target_kind") or "customer"), 0
        elif target == centre_id and (edge.get("target_kind") or "customer") == "customer":
            other, kind, side = source, str(edge.get("source_kind") or "customer"), 1
        else:
            continue
        if other == centre_id:
            continue
        label = LABELS.get(relationship, (relationship.replace("_", " "),) * 2)[side]
        note_id = edge.get("note_id")
        note_id = None if note_id is None or note_id != note_id else str(note_id)
        evidence = str(edge.get("evidence") or "")
        source_of = str(edge.get("evidence_source") or "")
        key = (other, label, source_of, evidence, note_id)  # a manages edge and its mirrored reports_to: once
        if key in seen:
            continue
        seen.add(key)
        weight = float(edge.get("weight") or 0.0)
        if (kind, other) not in found:
            company = evidence.removeprefix("works at ") if relationship == "works_at" else None
            shown = (accounts.get(other) or company or other) if kind == "account" else _name(other, names)
            found[(kind, other)] = Neighbour(other, kind, shown)
        found[(kind, other)].ties.append(Tie(label, weight, evidence, source_of, note_id))
    ranked = sorted(found.values(), key=lambda n: (-n.strength, n.kind != "account", n.label, n.id))
    for n in ranked:
        n.ties.sort(key=lambda t: (-t.weight, t.label, t.evidence))
    return Neighbourhood(centre_id, _name(centre_id, names), ranked[: max(limit, 0)], len(ranked))


def masked(hood: Neighbourhood, see_pii: bool) -> Neighbourhood:
    """The neighbourhood a reader may see: without ``see_pii`` people's names become initials (an unnamed one
    keeps its id) and free text is hidden (a note's quote, the evidence typed with an edge set through the CRM API:
    either may name people); companies, titles and ids stay."""
    if see_pii:
        return hood

    def person(label: str, customer_id: str) -> str:
        return label if label == customer_id else (mask_name(label) or customer_id)

    shown = []
    for n in hood.shown:
        ties = [
            dataclasses.replace(t, evidence=FREE_TEXT[t.evidence_source]) if t.evidence_source in FREE_TEXT else t
            for t in n.ties
        ]
        label = person(n.label, n.id) if n.kind == "customer" else n.label
        shown.append(Neighbour(n.id, n.kind, label, ties))
    return Neighbourhood(hood.centre_id, person(hood.centre_label, hood.centre_id), shown, hood.total)


def radial_layout(
    n: int, width: float = 640, height: float = 440, margin: float = 70
) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """The centre and ``n`` points on a circle around it: the first at the top, the rest clockwise, evenly spaced
    (deterministic: the same n gives the same points)."""
    centre = (width / 2, height / 2)
    radius = max(min(width, height) / 2 - margin, 10.0)
    points = []
    for i in range(n):
        angle = -math.pi / 2 + 2 * math.pi * i / n
        points.append((round(centre[0] + radius * math.cos(angle), 1), round(centre[1] + radius * math.sin(angle), 1)))
    return centre, points


def _weight(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _short(text: str, size: int = 18) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def svg(hood: Neighbourhood, width: int = 680, height: int = 480) -> str:
    """The neighbourhood as an accessible inline SVG (no script): lines labelled by the strongest tie and the total
    weight, each with every tie's evidence as its title; customer nodes link to their pages (a labelled group, not
    role=img, so screen readers reach the links; the page's table says the same in rows)."""
    centre, points = radial_layout(len(hood.shown), width, height)
    cx, cy = centre
    lines, nodes = [], []
    for n, (x, y) in zip(hood.shown, points, strict=True):
        first = n.ties[0].label if n.ties else ""
        extra = f" +{len(n.ties) - 1}" if len(n.ties) > 1 else ""
        tip = "; ".join(f"{t.label} ({t.weight:g}): {t.evidence}" for t in n.ties)
        stroke = 1 + min(n.strength, 3.0) * 1.5
        # the label runs along its line, centred 55 % of the way out (spokes spread there), never upside down
        mx, my = cx + (x - cx) * 0.55, cy + (y - cy) * 0.55
        angle = math.degrees(math.atan2(y - cy, x - cx))
        angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
        lines.append(
            f'<g class="edge" data-neighbour="{escape(n.id)}"><title>{escape(tip)}</title>'
            f'<line x1="{cx}" y1="{cy}" x2="{x}" y2="{y}" stroke-width="{stroke:.1f}"/>'
            f'<text x="{mx:.1f}" y="{my:.1f}" dy="-3" class="edge-label" transform="rotate({angle:.1f} {mx:.1f} {my:.1f})">'
            f"{escape(first + extra)} · {_weight(n.strength)}</text></g>"
        )
        shape = (
            f'<rect x="{x - 11}" y="{y - 11}" width="22" height="22" rx="3"/>'
            if n.kind == "account"
            else f'<circle cx="{x}" cy="{y}" r="11"/>'
        )
        # the name outside the circle, away from its line: left of a node on the left, above one at the top, …
        cos, sin = (x - cx) / math.hypot(x - cx, y - cy), (y - cy) / math.hypot(x - cx, y - cy)
        anchor = "start" if cos > 0.3 else "end" if cos < -0.3 else "middle"
        lx, ly = x + 16 * cos, y + 16 * sin + (4 if abs(sin) < 0.7 else 10 if sin > 0 else 0)
        body = (
            f"<title>{escape(n.label)} ({escape(n.kind)} {escape(n.id)}): strength {n.strength:g}</title>{shape}"
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{escape(_short(n.label))}</text>'
        )
        link = f'<a href="{escape(n.href)}">{body}</a>' if n.href else body
        nodes.append(f'<g class="node {escape(n.kind)}" data-id="{escape(n.id)}">{link}</g>')
    centre_node = (
        f'<g class="node centre" data-id="{escape(hood.centre_id)}"><title>{escape(hood.centre_label)}</title>'
        f'<circle cx="{cx}" cy="{cy}" r="16"/>'
        f'<text x="{cx}" y="{cy + 32}" text-anchor="middle">{escape(_short(hood.centre_label, 24))}</text></g>'
    )
    more = (
        f'<text x="{width - 8}" y="{height - 8}" text-anchor="end" class="more">and {hood.more} more</text>'
        if hood.more > 0
        else ""
    )
    desc = f"{hood.centre_label} and {len(hood.shown)} of {hood.total} neighbours, strongest first"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" id="graph" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="group" aria-labelledby="graph-title graph-desc">'
        f'<title id="graph-title">Relationships of {escape(hood.centre_label)}</title>'
        f'<desc id="graph-desc">{escape(desc)}</desc>'
        f"{''.join(lines)}{''.join(nodes)}{centre_node}{more}</svg>"
    )
