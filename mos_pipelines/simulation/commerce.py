"""Products and orders: what a converting session buys, for how much, in which currency."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mos_pipelines.ingestion.contracts import SOURCES
from mos_pipelines.simulation.channels import CHANNEL_NAMES
from mos_pipelines.simulation.geography import FX_USD_PER_UNIT, REGIONS
from mos_pipelines.simulation.population import SIZE_BANDS, Population
from mos_pipelines.simulation.sessions import DaySessions
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import iso_utc


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price_usd: float  # per seat and month


PRODUCTS: tuple[Product, ...] = (
    Product("plan_starter", "Starter plan", "plan", 29.0),
    Product("plan_growth", "Growth plan", "plan", 79.0),
    Product("plan_business", "Business plan", "plan", 199.0),
    Product("plan_enterprise", "Enterprise plan", "plan", 499.0),
    Product("addon_audiences", "Audience Builder add-on", "add-on", 49.0),
    Product("addon_journeys", "Journey Orchestrator add-on", "add-on", 79.0),
)
# Plan choice by company size band (rows) over PRODUCTS (columns).
PRODUCT_WEIGHTS_BY_SIZE = np.array(
    [
        [0.60, 0.25, 0.02, 0.00, 0.08, 0.05],
        [0.35, 0.40, 0.10, 0.00, 0.08, 0.07],
        [0.15, 0.40, 0.25, 0.05, 0.08, 0.07],
        [0.05, 0.30, 0.35, 0.15, 0.08, 0.07],
        [0.02, 0.20, 0.35, 0.28, 0.08, 0.07],
        [0.00, 0.10, 0.30, 0.45, 0.08, 0.07],
    ]
)
MAX_SEATS_BY_SIZE = (1, 3, 5, 8, 12, 20)
STATUSES = ("completed", "refunded", "cancelled")
STATUS_WEIGHTS = (0.90, 0.06, 0.04)
EMAIL_ON_LOGGED_IN_ORDER = 0.7  # logged-in checkouts that also carry the email


def orders_for_sessions(sessions: DaySessions, order_s: np.ndarray, population: Population, seed: int) -> pd.DataFrame:
    """One order per converting session, placed at the time of its Order Completed event.

    ``order_s`` holds the order time of each converting session, in session order.
    """
    g = rng(seed, Stream.ORDERS, sessions.day)
    rows = np.flatnonzero(sessions.convert)
    k = len(rows)
    person = sessions.person[rows]
    people = population.people
    size = (
        pd.Series(people["size_band"].to_numpy()[person])
        .map({b: i for i, b in enumerate(SIZE_BANDS)})
        .to_numpy(dtype=np.int64)
    )
    cumulative = np.cumsum(PRODUCT_WEIGHTS_BY_SIZE / PRODUCT_WEIGHTS_BY_SIZE.sum(axis=1, keepdims=True), axis=1)
    product = np.minimum((g.random(k)[:, None] > cumulative[size]).sum(axis=1), len(PRODUCTS) - 1)
    seats = 1 + np.floor(g.random(k) * np.asarray(MAX_SEATS_BY_SIZE)[size]).astype(np.int64)
    amount_usd = np.asarray([p.price_usd for p in PRODUCTS])[product] * seats
    currency = people["currency"].to_numpy()[person]
    fx = np.asarray([FX_USD_PER_UNIT[c] for c in currency])
    amount = np.round(amount_usd / fx, 2)
    status_p = np.asarray(STATUS_WEIGHTS)
    status = np.asarray(STATUSES, dtype=object)[g.choice(len(STATUSES), size=k, p=status_p / status_p.sum())]
    logged_in = sessions.login[rows] | sessions.signup[rows]
    user_id = np.where(logged_in, people["user_id"].to_numpy()[person], "")
    email = people["marketing_email"].to_numpy()[person]
    email = np.where(logged_in & (g.random(k) >= EMAIL_ON_LOGGED_IN_ORDER), "", email)
    return pd.DataFrame(
        {
            "order_id": [f"ORD-{sessions.day:04d}-{j:06d}" for j in range(k)],
            "session_row": rows,
            "person_idx": person,
            "user_id": user_id,
            "email": email,
            "product_id": [PRODUCTS[p].product_id for p in product],
            "seats": seats,
            "amount": amount,
            "currency": currency,
            "amount_usd": np.round(amount * fx, 2),
            "status": status,
            "created_s": order_s,
            "channel": np.asarray(CHANNEL_NAMES, dtype=object)[sessions.channel[rows]],
            "region": np.asarray(REGIONS, dtype=object)[population.region_idx[person]],
        }
    )


def order_rows(orders: pd.DataFrame, start: datetime.date) -> list[list[str]]:
    """orders_<day>.csv rows, in time order."""
    ordered = orders.sort_values("created_s", kind="stable")
    return [
        [o, u, e, f"{a:.2f}", c, s, t]
        for o, u, e, a, c, s, t in zip(
            ordered["order_id"],
            ordered["user_id"],
            ordered["email"],
            ordered["amount"],
            ordered["currency"],
            ordered["status"],
            iso_utc(start, ordered["created_s"].to_numpy()),
        )
    ]


def order_header() -> tuple[str, ...]:
    return tuple(f.name for f in SOURCES["orders"].fields)
