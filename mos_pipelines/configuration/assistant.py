"""``config/assistant.yaml``: how the conversational assistant reads a question (words for metrics, dimensions and
values; relative dates are built in), the governed customer look-up, and the limits of every answer. Read by
``mos_pipelines.assistant`` (``mos ask``, the web app's ``/ask``, ``mos mcp``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mos_pipelines.configuration.base import (
    Count,
    DomainSettings,
    Identifier,
    Positive,
    Relation,
    Section,
    Text,
)

PiiKind = Literal["email", "phone", "name"]


class CustomerField(Section):
    """A field a customer look-up may show or filter on: a column of one of the look-up's tables."""

    table: Identifier  # a key of customers.tables
    column: Identifier
    pii: PiiKind | None = None  # masked for a reader without see_pii; never a filter for them
    words: tuple[Text, ...] = ()  # how a question names the field ("stage", "company")
    values_from_warehouse: bool = False  # its distinct values are words a question may use as a filter
    prefix_required: bool = False  # a value counts only after one of its value_prefixes ("at Total", not "total")


class CustomerLookup(Section):
    tables: dict[Identifier, Relation] = Field(min_length=1)  # alias -> relation; the first is the base, the rest
    # are left-joined on `key`
    key: Identifier
    nouns: tuple[Text, ...] = Field(min_length=1)  # words that make a question a customer look-up
    fields: dict[Identifier, CustomerField] = Field(min_length=1)
    shown: tuple[Identifier, ...] = Field(min_length=1)  # the fields of an answer
    value_prefixes: dict[Identifier, tuple[Text, ...]] = Field(
        default_factory=dict
    )  # field -> words before a free value ("at Acme")


class Limits(Section):
    max_question_chars: Count  # longer questions are refused unread
    max_rows: Count  # rows returned by any query (the statement fetches at most this many)
    statement_timeout_s: Positive  # a query running longer is interrupted
    default_top_n: Count  # "top campaigns" without a number
    max_customers: Count  # rows of a customer look-up
    thread_turns: Count  # turns of a thread kept for follow-ups


class AssistantSettings(DomainSettings):
    """Mappings merge key by key with an override file (MOS_ASSISTANT_CONFIG); each list of words replaces."""

    metric_words: dict[Identifier, tuple[Text, ...]] = Field(
        default_factory=dict
    )  # metric -> words (its name and label always count)
    dimension_words: dict[Identifier, tuple[Text, ...]] = Field(
        default_factory=dict
    )  # dimension -> words for grouping by it
    value_words: dict[Identifier, dict[Text, tuple[Text, ...]]] = Field(
        default_factory=dict
    )  # dimension -> value -> words
    filler_words: tuple[Text, ...]  # words that carry no meaning for the spec; any other unknown word is refused
    out_of_scope: dict[Text, tuple[Text, ...]] = Field(
        default_factory=dict
    )  # what the assistant cannot do -> words that ask for it
    customers: CustomerLookup
    limits: Limits
