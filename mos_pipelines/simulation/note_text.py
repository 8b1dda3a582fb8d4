"""Sales notes that read like notes, with the facts each one states kept as truth.

Written from how reps write: terse, abbreviated, misspelt; a fact may be stated and taken back ("no longer looking
at Braze"), dates are relative to the day of the note ("next quarter", "after the summer"), amounts come as "120k",
"€90,000" or "about a hundred grand", a note may name colleagues and other companies, and an email reply quotes the
earlier message below it (the reply's facts win over the quoted ones); some notes are all lower case, a bullet list
or one run-on line.

Truth conventions (one per phrase, the same for every note): a quarter is its calendar months; "after the summer"
is 1 September to 30 November; "early next year" is January to March; "by X" runs from the note's day to X's last
day; "in N weeks/months" runs from the note's day to that day; "next Tuesday" is the Tuesday of next week (weeks start
on Monday) and "the 14th" the next 14th to come. An amount without a currency has no currency.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mos_pipelines.simulation.streams import Stream, rng

PRODUCTS: dict[str, tuple[str, ...]] = {
    "Audience Builder": (
        "Audience Builder",
        "audience builder",
        "the audience builder",
        "aud. builder",
        "segments tool",
    ),
    "Journey Orchestrator": ("Journey Orchestrator", "journey orchestration", "journeys", "the orchestrator"),
    "Attribution Suite": ("Attribution Suite", "attribution", "multi-touch attribution", "MTA"),
    "Data Connectors": ("Data Connectors", "connectors", "the data connectors", "integrations/connectors"),
    "Enterprise plan": ("Enterprise plan", "enterprise tier", "ent plan", "Enterprise"),
}
COMPETITORS: dict[str, tuple[str, ...]] = {
    "Braze": ("Braze", "braze"),
    "Iterable": ("Iterable", "iterable"),
    "Klaviyo": ("Klaviyo", "klaviyo", "Klavyio"),
    "Segment": ("Segment", "Twilio Segment"),
    "Salesforce Marketing Cloud": ("Salesforce Marketing Cloud", "SFMC", "SF Marketing Cloud"),
    "Customer.io": ("Customer.io", "customer io", "Customer IO"),
}
# (title as written, role, seniority)
TITLES: tuple[tuple[str, str, str], ...] = (
    ("CMO", "marketing", "c_level"),
    ("Chief Marketing Officer", "marketing", "c_level"),
    ("CTO", "engineering", "c_level"),
    ("VP Marketing", "marketing", "vp"),
    ("VP of Growth", "growth", "vp"),
    ("VP Eng", "engineering", "vp"),
    ("Director of CRM", "crm", "director"),
    ("Dir. Lifecycle Marketing", "marketing", "director"),
    ("Head of Data", "data", "head"),
    ("Head of CRM", "crm", "head"),
    ("head of growth", "growth", "head"),
    ("Marketing Manager", "marketing", "manager"),
    ("mktg mgr", "marketing", "manager"),
    ("CRM Manager", "crm", "manager"),
    ("data analyst", "data", "individual"),
    ("CRM specialist", "crm", "individual"),
    ("marketing ops specialist", "marketing", "individual"),
)
PAINS: dict[str, tuple[str, ...]] = {
    "data_silos": (
        "data is scattered across {n} tools",
        "their customer data sits in silos",
        "can't get a single view of the customer",
    ),
    "manual_work": (
        "team spends days building lists by hand",
        "too much manual work in spreadsheets",
        "everything is manual exports atm",
    ),
    "deliverability": ("open rates tanked, deliverability issues", "emails landing in spam", "bad inbox placement"),
    "attribution": (
        "can't tell which channel drives revenue",
        "no idea what their ad spend returns",
        "reporting on ROI is a mess",
    ),
    "cost": ("current tool is too expensive", "renewal price went up 40%", "paying way too much for their stack"),
}
NEXT_STEPS: dict[str, tuple[str, ...]] = {
    "demo": ("demo", "product demo", "demo w/ their team"),
    "proposal": ("send proposal", "proposal", "send over a quote"),
    "call": ("follow-up call", "f/u call", "catch-up call"),
    "trial": ("start the trial", "kick off a POC", "pilot kickoff"),
    "security_review": ("security review", "infosec questionnaire", "SOC2 review"),
}
SENTIMENT_CUES: dict[str, tuple[str, ...]] = {
    "positive": ("Very keen.", "Sounded excited!", "Great call, strong fit.", "They love what they saw."),
    "negative": ("Pretty lukewarm tbh.", "Frustrated, pushing back hard.", "Not impressed so far.", "Cold call vibes."),
}
AMOUNT_WORDS = {
    50000: ("fifty grand", "about fifty thousand"),
    100000: ("about a hundred grand", "a hundred thousand or so", "roughly 100 grand"),
    250000: ("a quarter of a million", "quarter mil"),
    500000: ("half a million", "half a mil"),
}
CURRENCIES = {"USD": ("$", "USD", "dollars"), "EUR": ("€", "EUR", "euros"), "GBP": ("£", "GBP", "pounds")}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
WEEKDAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
OTHER_FIRST = ("Priya", "Tom", "Jonas", "Mei", "Carlos", "Ana", "Ben", "Olu")
OTHER_COMPANIES = ("Brightwave Agency", "Northfield Partners", "Kettle Digital", "Acme Consulting")
FILLER = (
    "Left a voicemail first, got through on the 2nd try.",
    "Call ran over, had to cut it short.",
    "They're mid-reorg, so things may move.",
    "Will loop in our SE.",
    "Sent the deck afterwards.",
)


@dataclass
class NoteFacts:
    """The facts a note states (after any change of mind); None or empty where it states none."""

    products: set[str] = field(default_factory=set)
    budget_amount: int | None = None
    budget_currency: str | None = None
    timeline: tuple[datetime.date, datetime.date] | None = None
    competitors: set[str] = field(default_factory=set)
    role: str | None = None
    seniority: str | None = None
    pain_point: str | None = None
    next_step: str | None = None
    next_step_date: datetime.date | None = None
    sentiment: str = "neutral"
    kinds: set[str] = field(default_factory=set)  # phrasing features used (negation, relative_date, amount_words...)

    def row(self) -> dict[str, Any]:
        return {
            "product_interest": ";".join(sorted(self.products)) or None,
            "budget_amount": self.budget_amount,
            "budget_currency": self.budget_currency,
            "timeline_start": self.timeline[0].isoformat() if self.timeline else None,
            "timeline_end": self.timeline[1].isoformat() if self.timeline else None,
            "competitor": ";".join(sorted(self.competitors)) or None,
            "role": self.role,
            "seniority": self.seniority,
            "pain_point": self.pain_point,
            "next_step": self.next_step,
            "next_step_date": self.next_step_date.isoformat() if self.next_step_date else None,
            "sentiment": self.sentiment,
            "features": ";".join(sorted(self.kinds)),
        }


def _pick(g: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(g.integers(len(options)))]


def _typo(g: np.random.Generator, text: str, rate: float = 0.04) -> str:
    """Swap or drop a letter in a few longer words (never in names of amounts or dates: callers pass prose)."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) >= 6 and w.isalpha() and g.random() < rate:
            k = int(g.integers(1, len(w) - 2))
            words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :] if g.random() < 0.5 else w[:k] + w[k + 1 :]
    return " ".join(words)


def quarter_range(year: int, q: int) -> tuple[datetime.date, datetime.date]:
    start = datetime.date(year, 3 * (q - 1) + 1, 1)
    end = datetime.date(year + (q == 4), (3 * q) % 12 + 1, 1) - datetime.timedelta(days=1)
    return start, end


def month_end(year: int, month: int) -> datetime.date:
    return datetime.date(year + (month == 12), month % 12 + 1, 1) - datetime.timedelta(days=1)


def _timeline(g: np.random.Generator, today: datetime.date) -> tuple[str, tuple[datetime.date, datetime.date], bool]:
    """A decision-timeline phrase, its date range and whether it is relative to the note's day."""
    q_now = (today.month - 1) // 3 + 1
    kind = int(g.integers(8))
    if kind == 0:
        nq, ny = (q_now % 4) + 1, today.year + (q_now == 4)
        return _pick(g, ("next quarter", "next qtr", "nxt quarter")), quarter_range(ny, nq), True
    if kind == 1:
        ahead = int(g.integers(1, 4))
        q0 = q_now - 1 + ahead
        q, y = q0 % 4 + 1, today.year + q0 // 4
        label = f"Q{q} {y}" if g.random() < 0.5 else f"Q{q} '{y % 100:02d}"
        return label, quarter_range(y, q), False
    if kind == 2:
        y = today.year if today.month < 9 else today.year + 1
        return "after the summer", (datetime.date(y, 9, 1), datetime.date(y, 11, 30)), True
    if kind == 3:
        return _pick(g, ("end of year", "EOY", "by year end")), (today, datetime.date(today.year, 12, 31)), True
    if kind == 4:
        return "early next year", (datetime.date(today.year + 1, 1, 1), datetime.date(today.year + 1, 3, 31)), True
    if kind == 5:
        n = int(g.integers(2, 7))
        word = _pick(g, (str(n), ("two", "three", "four", "five", "six")[n - 2]))
        return f"in {word} months", (today, _add_months(today, n)), True
    if kind == 6:
        month = (today.month + int(g.integers(1, 6)) - 1) % 12 + 1
        y = today.year + (month < today.month)
        name = MONTHS[month - 1]
        return f"by {name if g.random() < 0.6 else name[:3]}", (today, month_end(y, month)), False
    y = today.year if today.month <= 6 else today.year + 1
    return _pick(g, ("H2", "second half of the year")), (datetime.date(y, 7, 1), datetime.date(y, 12, 31)), True


def _add_months(d: datetime.date, n: int) -> datetime.date:
    m0 = d.month - 1 + n
    y, m = d.year + m0 // 12, m0 % 12 + 1
    return datetime.date(y, m, min(d.day, month_end(y, m).day))


def _next_step_date(g: np.random.Generator, today: datetime.date) -> tuple[str, datetime.date]:
    kind = int(g.integers(5))
    if kind == 0:
        return _pick(g, ("tomorrow", "tmrw")), today + datetime.timedelta(days=1)
    if kind == 1:
        wd = int(g.integers(5))
        ahead = 7 - today.weekday() + wd  # "next <day>": that day of next (Monday-first) week
        return f"next {_pick(g, (WEEKDAYS[wd], WEEKDAY_SHORT[wd]))}", today + datetime.timedelta(days=ahead)
    if kind == 2:
        n = int(g.integers(1, 4))
        return f"in {_pick(g, (str(n), ('one', 'two', 'three')[n - 1]))} {_pick(g, ('weeks', 'wks'))}".replace(
            "one weeks", "one week"
        ).replace("1 weeks", "1 week"), today + datetime.timedelta(weeks=n)
    if kind == 3:
        d = today + datetime.timedelta(days=int(g.integers(3, 40)))
        style = int(g.integers(3))
        text = (
            f"{MONTHS[d.month - 1][:3]} {d.day}"
            if style == 0
            else f"{d.day} {MONTHS[d.month - 1]}"
            if style == 1
            else f"the {d.day}{_ordinal(d.day)}"
        )
        next_month = (today.month % 12) + 1
        if style == 2 and not (d.month == today.month or (d.month == next_month and d.day <= today.day)):
            text = f"{MONTHS[d.month - 1][:3]} {d.day}"  # "the 14th" names the next 14th to come, no later one
        return text, d
    friday = today + datetime.timedelta(days=7 - today.weekday() + 4)
    return "end of next week", friday


def _ordinal(n: int) -> str:
    return "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _amount(g: np.random.Generator, currency_default: str) -> tuple[str, int, str | None, bool]:
    """An amount phrase, its value, the currency it states (or None) and whether it is in words."""
    if g.random() < 0.2:
        value = int(_pick(g, [str(v) for v in AMOUNT_WORDS]))
        text = _pick(g, AMOUNT_WORDS[value])
        if g.random() < 0.4:
            return f"{text} {CURRENCIES[currency_default][2]}", value, currency_default, True
        return text, value, None, True
    value = int(g.integers(2, 101)) * 5000
    cur = currency_default if g.random() < 0.8 else _pick(g, list(CURRENCIES))
    sign, code, _ = CURRENCIES[cur]
    style = int(g.integers(6))
    if style == 0:
        return f"{sign}{value // 1000}k", value, cur, False
    if style == 1:
        return f"{value // 1000}k {code}", value, cur, False
    if style == 2:
        return f"{sign}{value:,}", value, cur, False
    if style == 3:
        return f"{value:,} {code}", value, cur, False
    if style == 4:
        return f"{value // 1000}K", value, None, False
    return f"~{value // 1000}k", value, None, False


@dataclass
class _Draft:
    sentences: list[str] = field(default_factory=list)
    facts: NoteFacts = field(default_factory=NoteFacts)


def _body(g: np.random.Generator, today: datetime.date, first: str, company: str, currency: str) -> _Draft:
    d = _Draft()
    f = d.facts
    title, role, seniority = TITLES[int(g.integers(len(TITLES)))]
    if g.random() < 0.75:
        f.role, f.seniority = role, seniority
        opener = _pick(
            g,
            (
                "Call w/ {first} ({title}) at {company}.",
                "Spoke to {first}, {title} @ {company}.",
                "Met {first} - {title}, {company}.",
                "Disco call: {first} ({title}).",
                "{first} is the {title} at {company}.",
            ),
        )
    else:
        opener = _pick(g, ("Call w/ {first}.", "Quick sync with {first} from {company}.", "{first} replied to seq."))
    d.sentences.append(opener.format(first=first, title=title, company=company))
    if g.random() < 0.3:  # someone else in the room: a colleague or a partner company
        other, other_title, _, _ = (
            _pick(g, OTHER_FIRST),
            _pick(g, ("their agency lead", "IT", "procurement", "the analyst")),
            0,
            0,
        )
        d.sentences.append(
            _pick(
                g,
                (
                    f"{other} from {_pick(g, OTHER_COMPANIES)} also joined.",
                    f"Also on the call: {other} ({other_title}).",
                    f"cc'd {other} ({other_title}).",
                ),
            )
        )
        f.kinds.add("several_people")
    if g.random() < 0.75:
        chosen = [str(p) for p in g.choice(list(PRODUCTS), size=1 + int(g.random() < 0.2), replace=False)]
        f.products.update(chosen)
        names = " and ".join(_pick(g, PRODUCTS[p]) for p in chosen)
        d.sentences.append(
            _typo(
                g,
                _pick(
                    g,
                    (
                        f"Interested in {names}.",
                        f"Main interest: {names}.",
                        f"Wants to see {names}.",
                        f"Mostly asking about {names}.",
                        f"{names} is what they care about.",
                    ),
                ),
            )
        )
    if g.random() < 0.5:
        comp = str(g.choice(list(COMPETITORS)))
        written = _pick(g, COMPETITORS[comp])
        mode = g.random()
        if mode < 0.55:
            f.competitors.add(comp)
            d.sentences.append(
                _pick(
                    g,
                    (
                        f"Also evaluating {written}.",
                        f"Talking to {written} too.",
                        f"{written} is on the shortlist.",
                        f"Comparing us w/ {written}.",
                    ),
                )
            )
        elif mode < 0.85:
            f.kinds.add("negation")
            d.sentences.append(
                _pick(
                    g,
                    (
                        f"No longer looking at {written}.",
                        f"They dropped {written} from the shortlist.",
                        f"Not considering {written} anymore.",
                        f"Ruled out {written}.",
                        f"{written} is off the table.",
                    ),
                )
            )
        else:
            f.kinds.update({"negation", "change_of_mind"})
            f.competitors.add(comp)
            d.sentences.append(
                _pick(
                    g,
                    (
                        f"Had ruled out {written} but now it's back on the table.",
                        f"Said no to {written} last month, now reconsidering it.",
                    ),
                )
            )
    if g.random() < 0.55:
        text, value, cur, words = _amount(g, currency)
        f.budget_amount, f.budget_currency = value, cur
        if words:
            f.kinds.add("amount_words")
        d.sentences.append(
            _pick(
                g,
                (
                    f"Budget is {text}.",
                    f"Budget approx {text} for this yr.",
                    f"They have {text} set aside.",
                    f"budget: {text}",
                    f"Can spend {text}, maybe a bit more.",
                ),
            )
        )
    if g.random() < 0.55:
        text, span, relative = _timeline(g, today)
        f.timeline = span
        if relative:
            f.kinds.add("relative_date")
        d.sentences.append(
            _pick(
                g,
                (
                    f"Decision {text}.",
                    f"Want to decide {text}.",
                    f"Timeline: {text}.",
                    f"Looking to sign {text}.",
                    f"Go-live target {text}.",
                ),
            ).replace("decide by by", "decide by")
        )
    if g.random() < 0.5:
        pain = str(g.choice(list(PAINS)))
        f.pain_point = pain
        text = _pick(g, PAINS[pain]).format(n=int(g.integers(3, 9)))
        d.sentences.append(_typo(g, _pick(g, (f"Pain: {text}.", f"Main problem - {text}.", f"Says {text}."))))
    if g.random() < 0.6:
        step = str(g.choice(list(NEXT_STEPS)))
        f.next_step = step
        written = _pick(g, NEXT_STEPS[step])
        if g.random() < 0.85:
            when, date = _next_step_date(g, today)
            f.next_step_date = date
            d.sentences.append(
                _pick(g, (f"Next step: {written} {when}.", f"NS: {written}, {when}.", f"Agreed on a {written} {when}."))
            )
        else:
            d.sentences.append(_pick(g, (f"Next step: {written}.", f"NS: {written} (date tbd).")))
    r = g.random()
    if r < 0.3:
        f.sentiment = "positive"
        d.sentences.append(_pick(g, SENTIMENT_CUES["positive"]))
    elif r < 0.5:
        f.sentiment = "negative"
        d.sentences.append(_pick(g, SENTIMENT_CUES["negative"]))
    if g.random() < 0.3:
        d.sentences.insert(int(g.integers(1, len(d.sentences) + 1)), _pick(g, FILLER))
    return d


def _reply(g: np.random.Generator, today: datetime.date, first: str, earlier: NoteFacts, currency: str) -> _Draft:
    """The reply on top of a quoted earlier note: changes a few facts, keeps the rest."""
    d = _Draft()
    f = d.facts
    f.__dict__.update({k: (set(v) if isinstance(v, set) else v) for k, v in earlier.__dict__.items()})
    f.kinds = set(earlier.kinds) | {"reply_chain"}
    d.sentences.append(_pick(g, (f"Update from {first}:", "Quick update -", f"{first} came back on email.")))
    changed = False
    if earlier.competitors and g.random() < 0.5:
        comp = sorted(earlier.competitors)[0]
        f.competitors.discard(comp)
        f.kinds.update({"negation", "change_of_mind"})
        d.sentences.append(_pick(g, (f"no longer looking at {comp}.", f"They dropped {comp}.")))
        changed = True
    if g.random() < 0.5:
        text, value, cur, words = _amount(g, currency)
        f.budget_amount, f.budget_currency = value, cur
        f.kinds.add("change_of_mind")
        if words:
            f.kinds.add("amount_words")
        d.sentences.append(_pick(g, (f"Budget now {text}.", f"Revised budget: {text}.")))
        changed = True
    if not changed or g.random() < 0.4:
        text, span, relative = _timeline(g, today)
        f.timeline = span
        if relative:
            f.kinds.add("relative_date")
        d.sentences.append(f"Timeline moved: {text}.")
    r = g.random()
    if r < 0.3:
        f.sentiment = "positive"
        d.sentences.append(_pick(g, SENTIMENT_CUES["positive"]))
    elif r < 0.45:
        f.sentiment = "negative"
        d.sentences.append(_pick(g, SENTIMENT_CUES["negative"]))
    return d


def write_note(
    g: np.random.Generator,
    when: datetime.datetime,
    first: str,
    company: str,
    currency: str = "USD",
    author: str = "Dana",
) -> tuple[str, NoteFacts]:
    """One note's text and the facts it states, drawn from ``g``; ``when`` is the note's time (UTC)."""
    today = when.date()
    if g.random() < 0.15:
        earlier_day = today - datetime.timedelta(days=int(g.integers(3, 21)))
        first_note = _body(g, earlier_day, first, company, currency)
        reply = _reply(g, today, first, first_note.facts, currency)
        quoted = "\n".join("> " + s for s in first_note.sentences)
        stamp = earlier_day.strftime("%a, %d %b %Y")
        text = " ".join(reply.sentences) + f"\n\nOn {stamp}, {author} wrote:\n" + quoted
        # the earlier note's relative dates count from its own day: the truth keeps the reply's view
        return text, reply.facts
    draft = _body(g, today, first, company, currency)
    style = g.random()
    if style < 0.15:  # typed fast on a phone
        draft.facts.kinds.add("lowercase")
        return " ".join(draft.sentences).lower(), draft.facts
    if style < 0.30:  # a bullet list without full stops
        draft.facts.kinds.add("bullets")
        return "\n".join("- " + sentence.rstrip(".") for sentence in draft.sentences), draft.facts
    if style < 0.40:  # one run-on line
        draft.facts.kinds.add("run_on")
        return _pick(g, (" / ", " -- ", "; ")).join(sentence.rstrip(".") for sentence in draft.sentences), draft.facts
    separator = "\n" if g.random() < 0.3 else " "
    return separator.join(draft.sentences), draft.facts


def generate_notes(seed: int, n: int, start: datetime.datetime) -> list[dict[str, Any]]:
    """``n`` notes over the 90 days from ``start``: note_id, created_at, text and the truth columns."""
    from mos_pipelines.simulation.names import COMPANY_CORES  # a simulator name list; kept local to this function

    g = rng(seed, Stream.NOTE_SET)
    rows = []
    for j in range(n):
        when = start + datetime.timedelta(seconds=float(g.random() * 90 * 86400))
        first = _pick(g, ("Jane", "Rahul", "Sofia", "Mark", "Yuki", "Lena", "Omar", "Chloé", "Pieter", "Grace"))
        company = f"{_pick(g, COMPANY_CORES).title()} {_pick(g, ('Inc.', 'GmbH', 'Ltd', 'SA', 'Labs'))}"
        currency = _pick(g, list(CURRENCIES))
        text, facts = write_note(g, when, first, company, currency)
        rows.append({"note_id": f"note_{seed}_{j:06d}", "created_at": when.isoformat(), "text": text, **facts.row()})
    return rows
