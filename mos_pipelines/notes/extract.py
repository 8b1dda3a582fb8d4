"""Offline extraction of sales-note attributes: rules over sentences, fuzzy names for typos, negation by clause.

``extract(text, created_at)`` returns every attribute it finds, each with the character span it came from, a
confidence and the extractor's name and version. The note is read as segments: the text on top (dated by the
note's own timestamp) and each quoted earlier message below an ``On <date>, <name> wrote:`` line (dated by that
line, so "next week" in a quoted message counts from the day it was written). Single-valued attributes take the
newest segment's last mention; a competitor's last mention decides whether it is still evaluated ("no longer
looking at Braze" after "also evaluating Braze" leaves a negated competitor).

Date conventions (documented, the same as the simulator's truth): a quarter is its calendar months; "after the
summer" is 1 September to 30 November; "early next year" January to March; "by <month>" and "end of year" run
from the note's day to that month's or year's last day; "next <weekday>" is that day of next week (weeks start on
Monday), a bare weekday the next one to come.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from rapidfuzz import fuzz

EXTRACTOR = "rules"
# The attributes a note can yield (the rules, the LLM path's schema and the scoring share this one list).
AttributeName = Literal[
    "product_interest",
    "budget_amount",
    "budget_currency",
    "decision_timeline",
    "competitor",
    "role",
    "seniority",
    "pain_point",
    "next_step",
    "next_step_date",
    "sentiment",
]
ATTRIBUTES: tuple[str, ...] = get_args(AttributeName)
VERSION = "2026-12-06.7"

PRODUCTS: dict[str, tuple[str, ...]] = {
    "Audience Builder": ("audience builder", "aud. builder", "aud builder", "segments tool", "segmentation"),
    "Journey Orchestrator": (
        "journey orchestrator",
        "journey orchestration",
        "journey builder",
        "journeys",
        "orchestrator",
    ),
    "Attribution Suite": ("attribution suite", "multi-touch attribution", "attribution", "mta"),
    "Data Connectors": ("data connectors", "connectors", "integrations"),
    "Enterprise plan": ("enterprise plan", "enterprise tier", "ent plan", "enterprise"),
}
COMPETITORS: dict[str, tuple[str, ...]] = {
    "Braze": ("braze",),
    "Iterable": ("iterable",),
    "Klaviyo": ("klaviyo",),
    "Segment": ("twilio segment", "Segment"),  # capitalised only: "segment" is a common word
    "Salesforce Marketing Cloud": ("salesforce marketing cloud", "sf marketing cloud", "sfmc", "marketing cloud"),
    "Customer.io": ("customer.io", "customer io", "customerio"),
}
SENIORITY = (
    ("c_level", r"\b(?:c[mtefor]o|chief \w+ officer)\b"),
    ("vp", r"\b(?:VP|SVP|EVP|vice president)\b"),
    ("director", r"\b(?:director|dir\.?)(?=\W)"),
    ("head", r"\bhead of\b"),
    ("manager", r"\b(?:manager|mgr|lead)\b"),
    ("individual", r"\b(?:specialist|analyst|coordinator|associate|engineer|executive)\b"),
)
ROLES = (
    ("marketing", r"\b(?:marketing|mktg|lifecycle|CMO|brand|demand gen\w*)\b"),
    ("sales", r"\b(?:sales|CRO|revenue)\b"),
    ("finance", r"\b(?:finance|CFO|procurement)\b"),
    ("growth", r"\bgrowth\b"),
    ("crm", r"\bcrm\b"),
    ("data", r"\b(?:data|analyst|analytics|BI)\b"),
    ("engineering", r"\b(?:eng|engineering|engineer|cto|(?-i:IT)|technology)\b"),
)
PAINS: dict[str, tuple[str, ...]] = {
    "data_silos": (
        "silos",
        "siloed",
        "scattered across",
        "spread (?:over|across)",
        "split (?:over|across|between)",
        "single view",
        "fragmented",
        "disconnected",
        "(?:don't|do not|doesn't) talk to each other",
        r"(?:across|over|in|from) (?:\d+|two|three|four|five|six|several|many|multiple) (?:different )?(?:tools|systems|platforms)",
    ),
    "manual_work": (
        "manual",
        "copy-paste",
        "copy and paste",
        "manually",
        "by hand",
        "spreadsheets",
        "copy(?:ing)? \\w+ between",
        "csv (?:uploads|exports)",
        "exports? csvs?",
        "pulling lists",
    ),
    "deliverability": (
        "deliverability",
        "spam",
        "junk",
        "inbox placement",
        "open rates",
        "bounce rates?",
        "bounces",
    ),
    "attribution": (
        "which channel",
        "ad spend returns",
        "roi(?! (?:calculator|workshop|deck|model|analysis|study))",
        "roas",
        "what drives revenue",
        "(?:tie|tying|link|linking|connect) \\w+(?: \\w+)? back to revenue",
        "what (?:paid|paid social|ads?|spend|marketing) \\w*\\s?returns",
        "pain is attribution",
        "(?:can't|cannot|unable to|no way to) (?:reconcile|match|tie|connect) [^.;]{0,60}(?:revenue|sales|spend|roas)",
    ),
    "cost": (
        "too expensive",
        "price went up",
        "paying way too much",
        "paying too much",
        "costs too much",
        "pricing is killing",
        "renewal (?:quote|price|cost)s?",
        "push(?:ed|ing)? back on (?:price|cost)",
        "(?:wants?|asking for) \\d+ ?% off",
    ),
}
NEXT_STEPS: dict[str, tuple[str, ...]] = {
    "demo": ("demo", "walkthrough", "walk-through", "walk through"),
    "proposal": ("proposal", "quote", "quotes", "send pricing", "pricing for", "pricing on", "pricing deck"),
    "call": (
        "follow-up call",
        "f/u call",
        "catch-up call",
        "call",
        "revisit",
        "check in",
        "check back",
        "try again",
        "circle back",
        "touch base",
        "ping",
        "workshop",
        "meeting",
        "sync",
    ),
    "trial": ("trial", "poc", "pilot"),
    "security_review": ("security review", "security questionnaire", "infosec", "soc2", "soc 2", "dpa review"),
}
SENTIMENT = {
    "negative": (
        "lukewarm",
        "frustrated",
        "pushing back",
        "not impressed",
        "cold call vibes",
        "unhappy with us",
        "skeptical",
        "annoyed",
        "push(?:ed|ing)? back",
        "at risk",
        "closed[- ]lost",
        "not a fit",
        "slipped",
        "slip(?:s|ping)",
        "not worth",
        "blocker",
        "(?:they've|they have|they) (?:chosen|picked|selected|gone with|went with)",
        "got cut",
        "concerned",
        "lost to",
        "lost (?:the deal|momentum|interest)",
        "(?:deal(?:'s| is)|it's) dead",
        "no movement",
        "meh",
        "(?:renewal|churn|deal) risk",
        "annoy(?:ed|ing)",
        "tough (?:crowd|call|meeting)",
        "not a good sign",
        "disappoint(?:ed|ing)",
        "stalled",
        "went (?:dark|quiet)",
        "gone (?:dark|quiet)",
        "ghost(?:ed|ing)",
        "overkill",
    ),
    "positive": (
        "very keen",
        "keen",
        "excited",
        "great",
        "strong fit",
        "lov(?:e|ed|es)",
        "impressed",
        "enthusiastic",
        "happy",
        "positive",
        "thrilled",
        "went well",
        "promising",
        "warm(?:ed)? (?:lead|up|to us)",
        "super positive",
        "(?:budget|po|deal|contract|purchase) (?:is |was |got |has been )?(?:approved|signed)",
        "(?:good|great|productive|solid) (?:call|meeting|convo|energy|chat|session|discussion)",
    ),
}
NEGATION = re.compile(
    r"\b(?:no longer|not|n't|never|dropped|ruled out|off the table|said no to|rejected|moved away from|no|"
    r"moving (?:off|away from)|'s out|is out|parked|passed on|stay(?:ing)? (?:with|on)|current (?:tool|vendor|esp|"
    r"platform|provider)|stick(?:ing|s)? with|incumbent|consolidat\w+|replac(?:e|es|ing)|renewal|decided against|went with|wants? out of|switch(?:ing)? (?:off|from)|"
    r"migrat\w+ (?:off|from|away from)|runs? (?:\w+ )?(?:on|through)|currently (?:on|using|with)|renew(?:ing|s)? with)(?!\w)",
    re.I,
)
CONTRAST = re.compile(
    r"\b(?:but|while|whereas|however|now|and (?:are |is )?(?:looking|evaluating|considering))\b|;|\s-\s"
)
TAKEN_BACK = re.compile(  # "keen on Segment but they've parked that": a cue pointing back across the contrast
    r"\b(?:parked|dropped|ruled out|passed on|rejected|killed)\s+(?:that|it|them|the idea)\b|"
    r"\b(?:it|that|they)(?:'s| is| are|'re)\s+(?:out|off the table)\b",
    re.I,
)
REAFFIRM = re.compile(r"\b(?:back on the table|reconsidering|back in the running|now considering)\b", re.I)
OTHER_PERSON = re.compile(r"\b(?:also joined|also on the call|cc'd|cc|looped in)\b", re.I)

BUDGET_CUE = re.compile(
    r"\b(?:year one|first year|per year|a year|annual|annually|budget|spend|set aside|afford|allocated|approved|can do|can stretch|ceiling|signed off|earmarked|max|"
    r"maximum|cap|capped|can go to|up to|under|envelope|funding|funded)\b",
    re.I,
)
TIMELINE_CUE = re.compile(
    r"\b(?:decide|decides|decided|decision|sign|sign-off|timeline|go-live|live|close|moved|launch|pick|choose|select|"
    r"slipped|slips|pushed|commit|vendor)\b",
    re.I,
)
STEP_CUE = re.compile(
    r"\b(?:next step|ns|next|agreed|booked|scheduled|will|set up|set for|wants?|due|kicks? ?off|kickoff|revisit|push|pushed|let's|"
    r"(?:'d|would) like|try|"
    r"follow-?up|f/u|ping|check back|circle back|touch base|send|sending|sent over|asked for|requested|starts?|"
    r"goes out|to start|planned|tentative|'ll|shall|need(?:s|ed)? (?:a|our|the)|moved to|again)\b",
    re.I,
)
PAST_AFTER = re.compile(r"\W{0,3}(?:\w+\s)?(?:went|was|were|happened|is done|ran)\b", re.I)
PAST_BEFORE = re.compile(r"\b(?:after|since|during|loved|liked|hated|from|in) (?:the|our|their|a)?\s?(?:\w+\s)?$", re.I)


def _past(sentence: str, start: int, end: int) -> bool:
    """Whether a step mention is a past event ("the demo went well", "loved the demo"), not a next step."""
    return bool(PAST_AFTER.match(sentence, end) or PAST_BEFORE.search(sentence[max(0, start - 30) : start]))


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_RE = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
CURRENCY_WORDS = {
    "$": "USD",
    "usd": "USD",
    "dollars": "USD",
    "€": "EUR",
    "eur": "EUR",
    "euros": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "pounds": "GBP",
    **{code: code.upper() for code in ("sek", "nok", "dkk", "chf", "cad", "aud", "jpy", "inr")},
}
_CUR = r"(?P<code>usd|eur|gbp|dollars|euros|pounds|sek|nok|dkk|chf|cad|aud|jpy|inr)"
AMOUNT_NUMERIC = re.compile(
    r"(?:(?P<pre>usd|eur|gbp|sek|nok|dkk|chf|cad|aud|jpy|inr)\s?)?(?P<sign>[$€£])?\s?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?(?P<mult>k|m|mil|mn|million|grand|thousand)?\b"
    rf"(?:\s?{_CUR}\b)?",
    re.I,
)
AMOUNT_WORDS = re.compile(
    r"(?P<sign>[$€£])?(?:(?P<fraction>half|a quarter|quarter)(?: of)?(?: a)? (?:million|mil|mn)\b"
    r"|(?P<word>an?|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety)(?: hundred)? (?P<unit>grand|thousand|k)\b)"
    rf"(?:\s(?:or so\s)?{_CUR}\b)?",
    re.I,
)
MONTH_WORD = (  # a month's name or abbreviation, never "marketing"
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?(?!\w)"
)
PERIODS = ("next_quarter", "quarter", "after_summer", "early_next_year", "half", "end_of_year")
_WEEKDAY_RE = r"(?P<wd>mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*"


@dataclass(frozen=True)
class Attribute:
    """One fact read from a note: ``text[start:end]`` is the evidence."""

    name: str
    value: Any
    start: int
    end: int
    confidence: float
    negated: bool = False
    extractor: str = EXTRACTOR
    version: str = VERSION
    prompt_version: str | None = None  # the LLM path's prompt; None for the rules


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    text: str
    day: datetime.date
    segment: int  # 0 = newest (the text on top), then each quoted message, older as it grows


QUOTE_HEADER = re.compile(r"^on (?P<date>.+?),? (?P<who>[^,\n]+?) wrote:\s*$", re.I | re.M)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|\s+(?:--|/)\s+|;\s+")  # run-on notes: " / ", " -- ", "; "
ABBREVIATIONS = re.compile(r"(?:\b(?:dir|mr|mrs|ms|dr|vs|approx|aud|sr|jr|dept|mgmt|e\.g|i\.e)\.)$", re.I)


def _parse_header_date(text: str) -> datetime.date | None:
    """The day in a quote header ("Mon, 04 May 2026"), or None when it names no real day ("31 Feb")."""
    try:
        return _header_date(text)
    except ValueError:
        return None


def _header_date(text: str) -> datetime.date | None:
    m = re.search(rf"(?P<d>\d{{1,2}}) (?P<m>{MONTH_RE}) (?P<y>\d{{4}})", text, re.I)
    if m:
        return datetime.date(int(m["y"]), MONTHS.index(m["m"][:3].lower()) + 1, int(m["d"]))
    m = re.search(rf"(?P<m>{MONTH_RE}) (?P<d>\d{{1,2}}),? (?P<y>\d{{4}})", text, re.I)
    if m:
        return datetime.date(int(m["y"]), MONTHS.index(m["m"][:3].lower()) + 1, int(m["d"]))
    m = re.search(r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})", text)
    if m:
        return datetime.date(int(m["y"]), int(m["m"]), int(m["d"]))
    return None


def sentences(text: str, day: datetime.date) -> list[_Sentence]:
    """The note's clauses with the day each one counts from and its segment (0 newest)."""
    out: list[_Sentence] = []
    segment, current = 0, day
    pos = 0
    for line in text.splitlines(keepends=True):
        header = QUOTE_HEADER.match(line.strip())
        if header:
            segment += 1
            current = _parse_header_date(header["date"]) or current
            pos += len(line)
            continue
        body_start = pos
        stripped = line.lstrip()
        while stripped.startswith(">"):
            stripped = stripped[1:].lstrip()
        body_start = pos + len(line) - len(stripped)
        if line.lstrip().startswith(">") and segment == 0:
            segment = 1  # a quote without a header line
        spans: list[list[int]] = []  # [start, end) within ``stripped``
        prev = 0
        for m in SENTENCE_END.finditer(stripped):
            spans.append([prev, m.start()])
            prev = m.end()
        spans.append([prev, len(stripped)])
        merged: list[list[int]] = []
        for span in spans:
            if merged and ABBREVIATIONS.search(stripped[merged[-1][0] : merged[-1][1]]):
                merged[-1][1] = span[1]  # "Dir. Lifecycle Marketing": not a sentence end
            else:
                merged.append(span)
        for start, end in merged:
            piece = stripped[start:end].rstrip()
            if piece:
                s, e = body_start + start, body_start + start + len(piece)
                out.append(_Sentence(s, e, text[s:e], current, segment))
        pos += len(line)
    return out


@functools.cache
def _pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile``, kept: the rules build their patterns from phrase lists, note after note (~2 million
    compilations looked up in ``re``'s own cache per 10,000 notes)."""
    return re.compile(pattern, flags)


@functools.cache
def _word(text: str, flags: int, after_dot: bool = False) -> re.Pattern[str]:
    """``text`` literally, as a whole word (not right after a dot either when ``after_dot``: "x.Braze" is no
    mention)."""
    return re.compile(rf"(?<![\w{'.' if after_dot else ''}]){re.escape(text)}(?!\w)", flags)


def _may_contain(sentence: str, lowered: str, text: str) -> bool:
    """False only when ``text`` cannot match ``sentence`` even ignoring case: a plain substring test that spares the
    regular expression most of the time. Decisive for ASCII only (outside it, case-insensitive matching folds
    characters that ``str.lower`` keeps apart)."""
    return not (sentence.isascii() and text.isascii()) or text.lower() in lowered


def _sorted(aliases: dict[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(((a, c) for c, al in aliases.items() for a in al), key=lambda p: -len(p[0])))


_SORTED_COMPETITORS, _SORTED_PRODUCTS = _sorted(COMPETITORS), _sorted(PRODUCTS)


def _longest_first(aliases: dict[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    """(alias, canonical), longest alias first: the module's own tables (constants) sorted once, any other on each
    call (the LLM path builds tables of its own)."""
    if aliases is COMPETITORS:
        return _SORTED_COMPETITORS
    if aliases is PRODUCTS:
        return _SORTED_PRODUCTS
    return _sorted(aliases)


def _alias_hits(
    sentence: str, aliases: dict[str, tuple[str, ...]], fuzzy: bool, caseless: bool = False
) -> list[tuple[str, int, int, float]]:
    """(canonical, start, end, confidence) of every alias in ``sentence``; longest aliases first, no overlaps."""
    hits: list[tuple[str, int, int, float]] = []
    taken: list[tuple[int, int]] = []
    pairs = _longest_first(aliases)
    lowered = sentence.lower()
    ascii_only = sentence.isascii()  # then a window's lower case is `lowered`'s slice, of the same length
    # most clauses name none: one search for any alias as a substring spares the loop (decisive for ASCII only)
    absent = ascii_only and not _any_alias(pairs).search(lowered)
    for alias, canonical in () if absent else pairs:
        if not _may_contain(sentence, lowered, alias):
            continue
        flags = 0 if alias[0].isupper() and not caseless else re.I  # in an all-lower-case note case says nothing
        for m in _word(alias, flags, after_dot=True).finditer(sentence):
            if not any(m.start() < e and s < m.end() for s, e in taken):
                hits.append((canonical, m.start(), m.end(), 0.9))
                taken.append((m.start(), m.end()))
    if fuzzy:  # typos: a window of as many words as the alias, close enough by edit distance
        words = [(m.start(), m.end()) for m in WORDS.finditer(sentence)]
        for canonical, low, s, e in _fuzzy_windows(pairs, words, lowered if ascii_only else None):
            if any(s < te and ts < e for ts, te in taken):
                continue
            candidate = sentence[s:e].lower()
            if candidate[0] != low[0] or abs(len(candidate) - len(low)) > 1:
                continue
            if low.startswith(candidate) or candidate.startswith(low):  # "customer" is not "customerio"
                continue
            pairs_ok = all(
                fuzz.ratio(a, b) >= 75 for a, b in zip(low.split(), candidate.split(), strict=False)
            )  # "customer of" is not "customer io"
            if pairs_ok and fuzz.ratio(low, candidate) >= 85:
                hits.append((canonical, s, e, 0.7))
                taken.append((s, e))
    return sorted(hits, key=lambda h: h[1])


@functools.cache
def _any_alias(pairs: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    """A pattern matching wherever any alias is, ignoring case, in a lower-case clause (a prefilter: no match, no
    alias is there)."""
    return re.compile("|".join(re.escape(alias.lower()) for alias, _ in pairs))


@functools.cache
def _fuzzy_aliases(
    pairs: tuple[tuple[str, str], ...],
) -> dict[int, dict[str, tuple[tuple[int, str, str], ...]]]:
    """The aliases matched within a typo or two, by their number of words and first letter: (rank, lower-case alias,
    canonical), rank their place in ``pairs``. 7 characters or more and not case-sensitive (short or case-sensitive
    aliases: exact only)."""
    index: dict[int, dict[str, tuple[tuple[int, str, str], ...]]] = {}
    for rank, (alias, canonical) in enumerate(pairs):
        if len(alias) >= 7 and not alias[0].isupper():
            low = alias.lower()
            by_letter = index.setdefault(alias.count(" ") + 1, {})
            by_letter[low[0]] = (*by_letter.get(low[0], ()), (rank, low, canonical))
    return index


def _fuzzy_windows(
    pairs: tuple[tuple[str, str], ...], words: list[tuple[int, int]], lowered: str | None
) -> list[tuple[str, str, int, int]]:
    """(canonical, lower-case alias, start, end) of every window that may be a typo of an alias (as many words as
    the alias), in the order of the aliases (longest first), then of the windows. With ``lowered`` (an ASCII
    clause's lower case) only the windows of the alias's first letter and of its length within one."""
    found: list[tuple[int, int, str, str, int, int]] = []
    for n, by_letter in _fuzzy_aliases(pairs).items():
        every = [entry for entries in by_letter.values() for entry in entries] if lowered is None else []
        for i in range(len(words) - n + 1):
            s, e = words[i][0], words[i + n - 1][1]
            for rank, low, canonical in every if lowered is None else by_letter.get(lowered[s], ()):
                if lowered is None or abs(e - s - len(low)) <= 1:
                    found.append((rank, i, canonical, low, s, e))
    found.sort()
    return [(canonical, low, s, e) for _, _, canonical, low, s, e in found]


WORDS = re.compile(r"\w+(?:[.'-]\w+)*")


def _negated(sentence: str, start: int, end: int) -> bool:
    """Whether the mention at ``sentence[start:end]`` is negated: a cue before it or after it with no contrast
    ("but", "while", "now", ";") in between ("moving off Braze and looking at Iterable" negates Braze only), unless
    the sentence takes it back ("ruled out X, now it's back on the table")."""
    if REAFFIRM.search(sentence):
        return False
    if TAKEN_BACK.search(sentence, end):
        return True
    for cue in NEGATION.finditer(sentence):
        lo, hi = (cue.end(), start) if cue.end() <= start else (end, cue.start()) if cue.start() >= end else (0, 0)
        if hi >= lo and not CONTRAST.search(sentence, lo, hi):
            return True
    return False


REVISED = re.compile(
    r"\b(?:now|revised|updated|cut to|raised to|increased to|down to|up to|can go to|max|instead|too high|too low)\b",
    re.I,
)


def _amount(sentence: str) -> tuple[int, str | None, int, int] | None:
    """The budget a sentence states: its first amount, or its last where it revises one ("was 300k, now 150k")."""
    found = _amounts(sentence)
    if not found:
        return None
    return found[-1] if REVISED.search(sentence) else found[0]


def _amounts(sentence: str) -> list[tuple[int, str | None, int, int]]:
    out: list[tuple[int, str | None, int, int]] = []
    for m in AMOUNT_WORDS.finditer(sentence):
        if m["fraction"]:
            value = 500_000 if m["fraction"].lower() == "half" else 250_000
        else:
            value = NUMBER_WORDS[m["word"].lower()] * (100 if "hundred" in m.group(0).lower() else 1) * 1000
        cur = CURRENCY_WORDS.get((m["sign"] or m["code"] or "").lower())
        out.append((value, cur, m.start(), m.end()))
    for m in AMOUNT_NUMERIC.finditer(sentence):
        mult = (m["mult"] or "").lower()
        if not (m["sign"] or mult or m["code"] or m["pre"]):
            continue
        number = float(m["num"].replace(",", ""))
        factor = (
            1000 if mult in ("k", "grand", "thousand") else 1_000_000 if mult in ("m", "mil", "mn", "million") else 1
        )
        value = int(round(number * factor))
        if not 1000 <= value <= 10**11:  # below a thousand is no budget; past 100 billion a typo
            continue
        if mult == "" and not m["sign"] and "," not in m["num"]:
            continue
        cur = CURRENCY_WORDS.get((m["sign"] or m["code"] or m["pre"] or "").lower())
        if not any(s < m.end() and m.start() < e for _, _, s, e in out):
            out.append((value, cur, m.start(), m.end()))
    return sorted(out, key=lambda a: a[2])


def _quarter(year: int, q: int) -> tuple[datetime.date, datetime.date]:
    start = datetime.date(year, 3 * (q - 1) + 1, 1)
    return start, _month_end(year, 3 * q)


def _month_end(year: int, month: int) -> datetime.date:
    return datetime.date(year + (month == 12), month % 12 + 1, 1) - datetime.timedelta(days=1)


def _add_months(d: datetime.date, n: int) -> datetime.date:
    m0 = d.month - 1 + n
    y, m = d.year + m0 // 12, m0 % 12 + 1
    return datetime.date(y, m, min(d.day, _month_end(y, m).day))


def _number(word: str) -> int | None:
    return int(word) if word.isdigit() else NUMBER_WORDS.get(word.lower())


TIMELINE_PATTERNS = (
    ("next_quarter", re.compile(r"\b(?:next|nxt) (?:quarter|qtr|q)\b", re.I)),
    ("quarter", re.compile(r"\bQ(?P<q>[1-4])(?:\s*(?:'(?P<yy>\d{2})|(?P<yyyy>20\d{2})))?\b", re.I)),
    ("after_summer", re.compile(r"\bafter (?:the )?summer\b", re.I)),
    (
        "early_next_year",
        re.compile(
            r"\b(?:early next year|(?:in|after) the new year|start of next year|after (?:christmas|the holidays|new year))\b",
            re.I,
        ),
    ),
    ("end_next_month", re.compile(r"\bend of (?:the )?next month\b", re.I)),
    ("end_of_year", re.compile(r"\b(?:end of (?:the )?year|EOY|year[- ]end)\b", re.I)),
    (
        "in_months",
        re.compile(
            r"\b(?:(?:in|within) (?:about |around |roughly |~)?(?P<n>\d+|two|three|four|five|six|seven|eight|nine|ten) "
            r"months|(?P<n2>\d+)[- ]months?(?: timeline| decision)?)\b",
            re.I,
        ),
    ),
    (
        "in_weeks",
        re.compile(
            r"\b(?:in|within) (?:about |around |roughly |~)?(?P<n>\d+|two|three|four|five|six|seven|eight|nine|ten) "
            r"(?:weeks|wks)\b",
            re.I,
        ),
    ),
    ("half", re.compile(r"\b(?:H(?P<h>[12])|(?P<which>first|second) half of the year)\b", re.I)),
    ("in_month", re.compile(rf"\b(?:in|during) (?P<m>{MONTH_WORD})(?=\W|$)", re.I)),
    ("by_month", re.compile(rf"\b(?:by|before|end of) (?:the end of )?(?P<m>{MONTH_RE})(?=\W|$)", re.I)),
)


def _timeline(
    sentence: str, day: datetime.date, cued: bool = True
) -> tuple[tuple[datetime.date, datetime.date], int, int] | None:
    """The decision timeline a sentence states; without a cue ("decide", "sign", ...) only a named period counts
    ("Maybe Q4", "H2"), not a month or a number of months."""
    q_now = (day.month - 1) // 3 + 1
    for kind, pattern in TIMELINE_PATTERNS:
        if not cued and kind not in PERIODS:
            continue
        m = pattern.search(sentence)
        if not m:
            continue
        span: tuple[datetime.date, datetime.date]
        if kind == "next_quarter":
            span = _quarter(day.year + (q_now == 4), q_now % 4 + 1)
        elif kind == "quarter":
            q = int(m["q"])
            year = int(m["yyyy"]) if m["yyyy"] else 2000 + int(m["yy"]) if m["yy"] else day.year + (q < q_now)
            span = _quarter(year, q)
            if re.search(r"(?:\b(?:by|before|until)\b(?: the)?(?: end of)?|\bend of)\s*$", sentence[: m.start()], re.I):
                span = (day, span[1])  # "by Q3": from now to the quarter's end
        elif kind == "after_summer":
            y = day.year if day.month < 9 else day.year + 1
            span = (datetime.date(y, 9, 1), datetime.date(y, 11, 30))
        elif kind == "end_next_month":
            nxt = _add_months(day.replace(day=1), 1)
            span = (day, _month_end(nxt.year, nxt.month))
        elif kind == "early_next_year":
            span = (datetime.date(day.year + 1, 1, 1), datetime.date(day.year + 1, 3, 31))
        elif kind == "end_of_year":
            span = (day, datetime.date(day.year, 12, 31))
        elif kind == "in_months":
            n = _number(m["n"] or m["n2"]) or 0
            span = (day, _add_months(day, n))
        elif kind == "in_weeks":
            span = (day, day + datetime.timedelta(weeks=_number(m["n"]) or 0))
        elif kind == "half":
            first = m["h"] == "1" or (m["which"] or "").lower() == "first"
            if first:
                y = day.year if day.month <= 3 else day.year + 1
                span = (datetime.date(y, 1, 1), datetime.date(y, 6, 30))
            else:
                y = day.year if day.month <= 6 else day.year + 1
                span = (datetime.date(y, 7, 1), datetime.date(y, 12, 31))
        else:
            month = MONTHS.index(m["m"][:3].lower()) + 1
            y = day.year if month >= day.month else day.year + 1
            span = (datetime.date(y, month, 1) if kind == "in_month" else day, _month_end(y, month))
        return span, m.start(), m.end()
    return None


DATE_PATTERNS = (
    ("tomorrow", re.compile(r"\b(?:tomorrow|tmrw|tmr)\b", re.I)),
    ("end_next_week", re.compile(r"\bend of next week\b", re.I)),
    ("next_weekday", re.compile(rf"\bnext {_WEEKDAY_RE}\b", re.I)),
    ("in_weeks", re.compile(r"\bin (?P<n>\d+|one|two|three|four|a) (?:weeks?|wks?)\b", re.I)),
    ("month_day", re.compile(rf"\b(?P<m>{MONTH_RE}) (?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b", re.I)),
    ("day_month", re.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<m>{MONTH_RE})(?=\W|$)", re.I)),
    ("numeric", re.compile(r"(?<![\d/])(?P<mo>\d{1,2})/(?P<d>\d{1,2})(?![\d/])")),  # month/day, US order
    ("the_nth", re.compile(rf"\b(?:the|{_WEEKDAY_RE}) (?P<d>\d{{1,2}})(?:st|nd|rd|th)\b", re.I)),
    ("in_months", re.compile(r"\bin (?P<n>\d+|one|two|three|four|five|six|a) months?\b", re.I)),
    ("weekday", re.compile(rf"\b(?:on )?{_WEEKDAY_RE}\b", re.I)),
)


def _step_date(sentence: str, day: datetime.date) -> tuple[datetime.date, int, int] | None:
    for kind, pattern in DATE_PATTERNS:
        m = pattern.search(sentence)
        if not m:
            continue
        try:
            if kind == "tomorrow":
                d = day + datetime.timedelta(days=1)
            elif kind == "end_next_week":
                d = day + datetime.timedelta(days=7 - day.weekday() + 4)
            elif kind == "next_weekday":
                wd = WEEKDAYS.index(m["wd"][:3].lower())
                d = day + datetime.timedelta(days=7 - day.weekday() + wd)  # that day of next week
            elif kind == "weekday":
                wd = WEEKDAYS.index(m["wd"][:3].lower())
                d = day + datetime.timedelta(days=(wd - day.weekday()) % 7 or 7)
            elif kind == "in_weeks":
                d = day + datetime.timedelta(weeks=_number(m["n"]) or 1)
            elif kind == "in_months":
                d = _add_months(day, _number(m["n"]) or 1)
            elif kind == "numeric":
                d = datetime.date(day.year, int(m["mo"]), int(m["d"]))
                if d < day:
                    d = datetime.date(day.year + 1, int(m["mo"]), int(m["d"]))
            elif kind in ("month_day", "day_month"):
                month = MONTHS.index(m["m"][:3].lower()) + 1
                d = datetime.date(day.year, month, int(m["d"]))
                if d < day:
                    d = datetime.date(day.year + 1, month, int(m["d"]))
            else:
                n = int(m["d"])
                y, mo = (day.year, day.month) if n > day.day else (day.year + (day.month == 12), day.month % 12 + 1)
                d = datetime.date(y, mo, n)
        except ValueError:  # "Feb 30": not a date
            continue
        return d, m.start(), m.end()
    return None


def _fuzzy_phrase(phrase: str, sentence: str, lowered: str | None = None) -> tuple[int, int] | None:
    """Where ``phrase`` is in ``sentence`` (``lowered``: its lower case), as a whole word ignoring case, else within
    a typo or two for phrases of 7 characters or more."""
    lowered = sentence.lower() if lowered is None else lowered
    m = _word(phrase, re.I).search(sentence) if _may_contain(sentence, lowered, phrase) else None
    if m:
        return m.start(), m.end()
    if len(phrase) < 7:
        return None
    found = fuzz.partial_ratio_alignment(phrase, lowered, score_cutoff=88)
    return (found.dest_start, found.dest_end) if found else None


_FUNCTION = r"(finance|procurement|marketing|sales|(?-i:IT)|engineering|data|growth|crm)"
FUNCTION_FROM = re.compile(  # "Sarah from finance pinged:", "Tom on the marketing team said"
    rf"^\W*[A-Z][a-z]+ (?:from (?:the |their )?{_FUNCTION}(?: team)?|(?:in|on) (?:the |their )?{_FUNCTION} team)"
    r"(?=\s*[:,.;)!-]|\s+(?:pinged|said|says|wrote|asked|called|emailed|replied|confirmed|wants|is|was|thinks)\b)",
    re.I,
)
TITLE_LEFT = re.compile(r"[,(:]|\s-\s|\bis the\b|\bas\b", re.I)
TITLE_RIGHT = re.compile(r"\s(?:at|@|from|with)\s|[,)(;]|\s-\s", re.I)


def _title_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the job title around ``text[start:end]`` begins and ends ("(VP Eng) at Data SA" -> "VP Eng")."""
    left = [m.end() for m in TITLE_LEFT.finditer(text, 0, start)]
    right = TITLE_RIGHT.search(text, end)
    return (left[-1] if left else max(0, start - 25)), (right.start() if right else min(len(text), end + 30))


PLAIN = re.compile(r"[a-z0-9 '.-]+")
# Prefilters, one search a clause: no match, none of the phrases is there (a match anywhere for any of them is one
# of the alternatives matching there).
ANY_PAIN = re.compile(
    r"(?<!\w)(?:" + "|".join(f"(?:{phrase})" for phrases in PAINS.values() for phrase in phrases) + r")(?!\w)", re.I
)
ANY_SENTIMENT = re.compile(r"\b(?:" + "|".join(f"(?:{w})" for words in SENTIMENT.values() for w in words) + r")\b")


def _pain(sentence: str) -> tuple[str, int, int, float] | None:
    """The pain point a sentence names: the earliest phrase (a pattern), else the closest plain phrase within a typo
    or two."""
    exact = [
        (m.start(), -(m.end() - m.start()), pain, m.end())
        for pain, phrases in (PAINS.items() if ANY_PAIN.search(sentence) else ())
        for phrase in phrases
        if (m := _pattern(rf"(?<!\w){phrase}(?!\w)", re.I).search(sentence))
    ]
    if exact:
        start, _, pain, end = min(exact)
        return pain, start, end, 0.8
    best: tuple[str, int, int, float] | None = None
    best_score = 0.0
    lowered = sentence.lower()
    for pain, phrase in _plain_pains():
        found = fuzz.partial_ratio_alignment(phrase, lowered, score_cutoff=88)
        if found and found.score > best_score:
            best, best_score = (pain, found.dest_start, found.dest_end, 0.6), found.score
    return best


@functools.cache
def _plain_pains() -> tuple[tuple[str, str], ...]:
    """(pain, phrase) of the pain phrases matched within a typo or two: the plain ones of 7 characters or more
    (patterns are matched exactly only)."""
    return tuple(
        (pain, phrase)
        for pain, phrases in PAINS.items()
        for phrase in phrases
        if len(phrase) >= 7 and PLAIN.fullmatch(phrase)
    )


def extract(text: str, created_at: datetime.datetime | datetime.date) -> list[Attribute]:
    """Every attribute found in ``text``, in the order of the note; relative dates count from ``created_at``."""
    day = created_at.date() if isinstance(created_at, datetime.datetime) else created_at
    found: list[tuple[int, Attribute]] = []  # (segment, attribute)
    clauses = sentences(text, day)
    caseless = not any(ch.isupper() for ch in text)
    budget_pending = -1  # the segment whose previous clause named a budget without an amount
    for c in clauses:
        lower = c.text.lower()

        def add(name: str, value: Any, s: int, e: int, conf: float, negated: bool = False, c: _Sentence = c) -> None:
            found.append((c.segment, Attribute(name, value, c.start + s, c.start + e, conf, negated)))

        for canonical, s, e, conf in _alias_hits(c.text, COMPETITORS, fuzzy=True, caseless=caseless):
            add("competitor", canonical, s, e, conf, _negated(c.text, s, e))
        for canonical, s, e, conf in _alias_hits(c.text, PRODUCTS, fuzzy=True):
            add("product_interest", canonical, s, e, conf * 0.95, _negated(c.text, s, e) and "interest" in lower)
        amount = _amount(c.text) if BUDGET_CUE.search(c.text) or budget_pending == c.segment else None
        if amount:
            value, cur, s, e = amount
            add("budget_amount", value, s, e, 0.9)
            if cur:
                add("budget_currency", cur, s, e, 0.95)
        # "Budget approved!! €200k for the platform": a cue without an amount carries to the next clause
        budget_pending = c.segment if BUDGET_CUE.search(c.text) and not amount else -1
        tl = _timeline(c.text, c.day, bool(TIMELINE_CUE.search(c.text) or re.search(r"\btimeline\b", lower)))
        if tl and not re.match(
            r" ?(?:budget|spend|numbers|results|revenue|targets?|pipeline)\b", c.text[tl[2] :], re.I
        ):
            (start, end), s, e = tl  # "Q3 budget" is no timeline
            add("decision_timeline", {"start": start.isoformat(), "end": end.isoformat()}, s, e, 0.8)
        other = OTHER_PERSON.search(c.text)  # titles after "also joined", "cc'd" belong to someone else
        own = c.text[: other.start()] if other else c.text
        titles = [(m, seniority) for seniority, pattern in SENIORITY if (m := re.search(pattern, own, re.I))]
        for m, seniority in sorted(titles, key=lambda t: t[0].start())[:1]:  # the first person named
            if m:
                add("seniority", seniority, m.start(), m.end(), 0.85)
                lo, hi = _title_bounds(own, m.start(), m.end())
                roles = [(role, r) for role, rp in ROLES if (r := re.search(rp, own[lo:hi], re.I))]
                tail = re.match(r",\s*([^,()]{2,30})", own[hi:]) if not roles else None
                if tail:  # "Sr. Director, Demand Gen": the function after the comma
                    lo, hi = hi + tail.start(1), hi + tail.end(1)
                    roles = [(role, r) for role, rp in ROLES if (r := re.search(rp, own[lo:hi], re.I))]
                if len(roles) > 1:  # "Marketing Ops Analyst": the function word, not the level word "analyst"
                    roles = [
                        (role, r) for role, r in roles if not (lo + r.start() < m.end() and m.start() < lo + r.end())
                    ] or roles
                if roles:  # the role word nearest the seniority word, within the title
                    role, r = min(roles, key=lambda x: abs(lo + x[1].start() - m.start()))
                    add("role", role, lo + r.start(), lo + r.end(), 0.8)
        if not titles and c.segment == 0:  # "Sarah from finance pinged": a function without a title
            team = FUNCTION_FROM.search(own)
            if team:
                word = next(w for w in team.groups() if w)
                role = next(r for r, rp in ROLES if re.search(rp, word, re.I))
                at = team.start(1) if team.group(1) else team.start(2)
                add("role", role, at, at + len(word), 0.6)
        pain_hit = _pain(c.text)
        if pain_hit:
            add("pain_point", pain_hit[0], pain_hit[1], pain_hit[2], pain_hit[3])
        cued = bool(STEP_CUE.search(c.text))
        hits = []  # (start, end, step) of every step a clause names, not as a past event
        for step, words in NEXT_STEPS.items():
            hit = next(
                (h for w in words if (h := _fuzzy_phrase(w, c.text, lower)) and not _past(c.text, h[0], h[1])), None
            )
            if hit:
                hits.append((hit[0], hit[1], step))
        for h_start, h_end, step in sorted(hits)[:1]:  # the first one named
            when = _step_date(c.text[h_end:], c.day)
            if cued or when:  # a cue ("next", "booked", "will") or a date after it ("trial from Aug 3") makes it a plan
                add("next_step", step, h_start, h_end, 0.8 if cued else 0.7)
                if when:
                    add("next_step_date", when[0].isoformat(), h_end + when[1], h_end + when[2], 0.8)
        for sentiment in ("negative", "positive") if ANY_SENTIMENT.search(lower) else ():
            cue = next((m for w in SENTIMENT[sentiment] if (m := _pattern(rf"\b(?:{w})\b").search(lower))), None)
            if cue:
                add("sentiment", sentiment, cue.start(), cue.end(), 0.7)
                break
    return _resolve(found)


FIRST_MENTION = ("role", "seniority")
SINGLE = ("budget_amount", "budget_currency", "decision_timeline", "role", "seniority", "pain_point", "next_step")


def _resolve(found: list[tuple[int, Attribute]]) -> list[Attribute]:
    """Keep every competitor's and product's newest mention; of single-valued attributes, the newest segment's last.

    A budget's currency goes with its amount: an amount restated without a currency drops the older currency.
    """
    out: list[Attribute] = []
    newest: dict[str, int] = {}
    for seg, a in found:
        newest.setdefault(a.name, seg)
        newest[a.name] = min(newest[a.name], seg)
    last: dict[tuple[str, Any], tuple[int, Attribute]] = {}
    for seg, a in found:
        key = (a.name, a.value) if a.name in ("competitor", "product_interest") else (a.name, None)
        if a.name in ("competitor", "product_interest"):
            if key not in last or seg <= last[key][0]:
                last[key] = (seg, a)
        elif seg == newest[a.name] and not (a.name in FIRST_MENTION and key in last):
            last[key] = (seg, a)  # the newest segment's last mention (its first for who the contact is)
    amount = last.get(("budget_amount", None))
    currency = last.get(("budget_currency", None))
    if amount and currency and currency[0] != amount[0]:
        del last[("budget_currency", None)]
    step = last.get(("next_step", None))
    date = last.get(("next_step_date", None))
    if date and (not step or date[0] != step[0]):
        del last[("next_step_date", None)]
    sentiment = last.get(("sentiment", None))
    for _, a in last.values():
        out.append(a)
    if not sentiment:
        out.append(Attribute("sentiment", "neutral", 0, 0, 0.5))
    return sorted(out, key=lambda a: (a.start, a.name))
