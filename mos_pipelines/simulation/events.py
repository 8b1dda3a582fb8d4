"""Segment-spec events of the day's sessions, rendered as JSON lines with DuckDB.

Each session starts with a page view of its landing page (carrying the UTM tags of its channel),
followed by its special events (sign-up + identify, login identify, webinar registration, demo
request, order) and ordinary browsing (page views and Product Viewed). Columns are built with numpy
and the JSON text with one DuckDB query per day (``to_json(struct_pack(...))``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.simulation.campaigns import Campaign
from mos_pipelines.simulation.channels import CHANNEL_NAMES
from mos_pipelines.simulation.commerce import PRODUCTS
from mos_pipelines.simulation.crm import webinar_episode_day
from mos_pipelines.simulation.population import Population
from mos_pipelines.simulation.sessions import MAX_GAP_S, MIN_GAP_S, DaySessions, session_utm
from mos_pipelines.simulation.timestamps import day_of

SITE = "https://www.mosdemo.example"
# An email click lands through the ESP's tracked link, which appends the recipient's token: the MD5 (hex) of
# the send's message id, so the warehouse can tie the landing device to the recipient (as ESPs' click ids do).
EMAIL_CLICK_TOKEN = "mos_eid"
PAGES: tuple[tuple[str, str], ...] = (
    ("/", "MOS Demo | Warehouse-native marketing"),
    ("/pricing", "Pricing"),
    ("/product", "Product overview"),
    ("/product/audiences", "Audiences"),
    ("/product/journeys", "Journeys"),
    ("/customers", "Customer stories"),
    ("/blog/warehouse-native-marketing", "Why warehouse-native marketing"),
    ("/blog/attribution-models", "Attribution models compared"),
    ("/docs", "Documentation"),
    ("/webinars", "Webinars"),
    ("/demo", "Request a demo"),
    ("/signup", "Start your free trial"),
)
# Landing pages per channel (indices into PAGES).
LANDING_PAGES: dict[str, tuple[int, ...]] = {
    "email": (5, 6, 7, 2),
    "paid_search": (1, 2, 11),
    "paid_social": (6, 3, 4),
    "linkedin": (5, 10, 2),
    "display": (0, 2),
    "webinar": (9,),
    "organic": (6, 7, 0, 8),
    "direct": (0, 1, 8),
}
# [channel, k]: landing page of a session with random k (each channel's list repeated to 12 columns).
LANDING_TABLE = np.array([[LANDING_PAGES[c][k % len(LANDING_PAGES[c])] for k in range(12)] for c in CHANNEL_NAMES])
BROWSE_PAGES = np.arange(len(PAGES) - 2)  # ordinary browsing avoids the demo and sign-up forms
PRODUCT_VIEW_SHARE = 0.35  # of ordinary browsing events

# Event kinds; the SQL below maps them to Segment types and event names.
PAGE, IDENTIFY, SIGNED_UP, PRODUCT_VIEWED, WEBINAR_REGISTERED, DEMO_REQUESTED, ORDER_COMPLETED = range(7)


@dataclass
class DayEvents:
    """The day's events in time order: their JSON lines and, per line, its session and time."""

    lines: list[str]
    session: np.ndarray
    seconds: np.ndarray


def event_timeline(sessions: DaySessions, generator: np.random.Generator) -> pd.DataFrame:
    """One row per event: session, position, time, kind and current page (numpy only)."""
    n_events = sessions.n_events
    session = np.repeat(np.arange(len(sessions)), n_events)
    first_row = np.repeat(np.cumsum(n_events) - n_events, n_events)
    position = np.arange(len(session)) - first_row
    gaps = np.where(position == 0, 0.0, MIN_GAP_S + generator.random(len(session)) * (MAX_GAP_S - MIN_GAP_S))
    cumulative = np.cumsum(gaps)
    seconds = np.round(sessions.start_s[session] + cumulative - cumulative[first_row], 3)

    n = n_events[session]
    signup, login = sessions.signup[session], sessions.login[session]
    webinar, demo, convert = sessions.webinar[session], sessions.demo[session], sessions.convert[session]
    tail = n - (webinar.astype(int) + demo + convert)
    at_tail = position - tail
    kind = np.where(generator.random(len(session)) < PRODUCT_VIEW_SHARE, PRODUCT_VIEWED, PAGE)
    kind = np.where(position == 0, PAGE, kind)
    kind = np.where(signup & (position == 1), SIGNED_UP, kind)
    kind = np.where(signup & (position == 2), IDENTIFY, kind)
    kind = np.where(login & (position == 1), IDENTIFY, kind)
    kind = np.where(webinar & (at_tail == 0), WEBINAR_REGISTERED, kind)
    kind = np.where(demo & (at_tail == webinar.astype(int)), DEMO_REQUESTED, kind)
    kind = np.where(convert & (at_tail == webinar.astype(int) + demo), ORDER_COMPLETED, kind)

    pick = generator.integers(0, 1 << 30, len(session))
    page = np.where(kind == PAGE, BROWSE_PAGES[pick % len(BROWSE_PAGES)], -1)
    landing = position == 0
    page[landing] = LANDING_TABLE[sessions.channel[session[landing]], pick[landing] % LANDING_TABLE.shape[1]]
    # Other events happen on the page viewed last; a page view's referrer is the page before it.
    last_page_row = np.maximum.accumulate(np.where(kind == PAGE, np.arange(len(session)), -1))
    previous_page = np.where(landing, -1, page[np.r_[0, last_page_row[:-1]][: len(session)]])
    page_seq = np.cumsum(kind == PAGE) - np.cumsum(kind == PAGE)[first_row]  # page views after the landing one
    current_page = page[last_page_row]
    current_previous = previous_page[last_page_row]
    return pd.DataFrame(
        {
            "session": session,
            "seconds": seconds,
            "kind": kind,
            "page": current_page,
            "previous_page": current_previous,
            "on_landing": page_seq == 0,
            "product": pick % len(PRODUCTS),
            "with_user": login | (signup & (position >= 1)),
        }
    )


class EventRenderer:
    """Renders events to JSON lines; holds the per-run lookup tables in a DuckDB connection."""

    def __init__(self, population: Population, seed: int) -> None:
        self.seed = seed
        self.con = duckdb.connect()
        people = population.people
        self.con.register(
            "people_lu",
            pd.DataFrame(
                {
                    "idx": np.arange(len(people)),
                    "user_id": people["user_id"].replace("", None),
                    "email": people["marketing_email"],
                    "first_name": people["first_name"],
                    "last_name": people["last_name"],
                    "company": people["company"],
                    "locale": people["locale"],
                }
            ),
        )
        self.con.register(
            "devices_lu",
            pd.DataFrame(
                {
                    "idx": np.arange(len(population.devices)),
                    "anonymous_id": population.devices["anonymous_id"],
                    "ip": population.devices["ip"],
                }
            ),
        )
        self.con.register(
            "pages_lu",
            pd.DataFrame(
                {
                    "idx": np.arange(len(PAGES)),
                    "path": [p for p, _ in PAGES],
                    "title": [t for _, t in PAGES],
                }
            ),
        )
        self.con.register(
            "products_lu",
            pd.DataFrame(
                {
                    "idx": np.arange(len(PRODUCTS)),
                    "product_id": [p.product_id for p in PRODUCTS],
                    "name": [p.name for p in PRODUCTS],
                    "category": [p.category for p in PRODUCTS],
                    "price": [p.price_usd for p in PRODUCTS],
                }
            ),
        )

    def close(self) -> None:
        self.con.close()

    def render(
        self,
        sessions: DaySessions,
        timeline: pd.DataFrame,
        orders: pd.DataFrame,
        campaigns: list[Campaign],
        start: datetime.date,
    ) -> DayEvents:
        """JSON lines of the day's events, ordered by time."""
        utm = session_utm(sessions, campaigns)
        m = len(sessions)
        order_id = np.full(m, None, dtype=object)
        revenue = np.full(m, np.nan)
        currency = np.full(m, None, dtype=object)
        rows = orders["session_row"].to_numpy()
        order_id[rows] = orders["order_id"].to_numpy()
        revenue[rows] = orders["amount"].to_numpy()
        currency[rows] = orders["currency"].to_numpy()
        episode = int(webinar_episode_day(np.array([sessions.day]))[0])  # the next webinar
        webinar_id = np.where(sessions.webinar, f"wb-{day_of(start, episode).isoformat()}", None)
        sess = pd.DataFrame(
            {
                "idx": np.arange(m),
                "person": sessions.person,
                "device": sessions.device,
                **{c: utm[c].to_numpy() for c in utm.columns},
                "order_id": order_id,
                "revenue": revenue,
                "currency": currency,
                "webinar_id": webinar_id,
                "message_id": sessions.email_message_id,
            }
        )
        ordered = timeline.assign(row=np.arange(len(timeline))).sort_values(["seconds", "row"], kind="stable")
        epoch_us = int((pd.Timestamp(start) - pd.Timestamp("1970-01-01")).total_seconds()) * 1_000_000
        ev = pd.DataFrame(
            {
                "row": np.arange(len(ordered)),
                "session": ordered["session"].to_numpy(),
                "ts_us": epoch_us + np.round(ordered["seconds"].to_numpy() * 1000).astype(np.int64) * 1000,
                "kind": ordered["kind"].to_numpy(),
                "page": ordered["page"].to_numpy(),
                "previous_page": ordered["previous_page"].to_numpy(),
                "on_landing": ordered["on_landing"].to_numpy(),
                "product": ordered["product"].to_numpy(),
                "with_user": ordered["with_user"].to_numpy(),
            }
        )
        self.con.register("sess", sess)
        self.con.register("ev", ev)
        try:
            lines = [
                r[0]
                for r in self.con.execute(_EVENTS_SQL, [self.seed, sessions.day, SITE, EMAIL_CLICK_TOKEN]).fetchall()
            ]
        finally:
            self.con.unregister("ev")
            self.con.unregister("sess")
        return DayEvents(lines, ev["session"].to_numpy(), ordered["seconds"].to_numpy())


# Parameters: $1 seed, $2 day, $3 site, $4 the email click token's query parameter. Key order is the Segment spec order of the landing contract.
_EVENTS_SQL = """
with base as (
    select
        e.row, e.kind, e.on_landing, e.with_user,
        md5(concat($1, ':', $2, ':', e.row)) as h,
        strftime(make_timestamp(e.ts_us), '%Y-%m-%dT%H:%M:%S.%gZ') as ts,
        d.anonymous_id, d.ip, p.user_id, p.email, p.first_name, p.last_name, p.company, p.locale,
        s.utm_source, s.utm_medium, s.utm_campaign, s.utm_content, s.utm_term,
        s.order_id, s.revenue, s.currency, s.webinar_id,
        pg.path, pg.title,
        case when e.previous_page < 0 then s.referrer else $3 || pp.path end as referrer,
        $3 || pg.path || case when e.on_landing and s.utm_source is not null then
            '?utm_source=' || s.utm_source || '&utm_medium=' || s.utm_medium
            || coalesce('&utm_campaign=' || s.utm_campaign, '') || coalesce('&utm_content=' || s.utm_content, '') || coalesce('&utm_term=' || replace(s.utm_term, ' ', '+'), '')
            || coalesce('&' || $4 || '=' || md5(s.message_id), '')
            else '' end as url,
        pr.product_id, pr.name as product_name, pr.category, pr.price
    from ev e
    join sess s on s.idx = e.session
    join people_lu p on p.idx = s.person
    join devices_lu d on d.idx = s.device
    join pages_lu pg on pg.idx = e.page
    left join pages_lu pp on pp.idx = e.previous_page
    join products_lu pr on pr.idx = e.product
)
select to_json(struct_pack(
    messageId := substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' || substr(h, 18, 3)
                 || '-' || substr(h, 21, 12),
    type := case kind when 0 then 'page' when 1 then 'identify' else 'track' end,
    timestamp := ts,
    anonymousId := anonymous_id,
    userId := case when with_user then user_id end,
    event := case kind when 2 then 'Signed Up' when 3 then 'Product Viewed' when 4 then 'Webinar Registered'
                       when 5 then 'Demo Requested' when 6 then 'Order Completed' end,
    properties := case kind
        when 2 then to_json(struct_pack(plan := 'trial'))
        when 3 then to_json(struct_pack(product_id := product_id, name := product_name, category := category,
                                        price := price))
        when 4 then to_json(struct_pack(webinar_id := webinar_id))
        when 6 then to_json(struct_pack(order_id := order_id, revenue := revenue, currency := currency))
        else '{}'::json end,
    traits := case when kind = 1 then to_json(struct_pack(email := email, first_name := first_name,
                                                           last_name := last_name, company := company)) end,
    context := case when on_landing and utm_source is not null then to_json(struct_pack(
            campaign := struct_pack(source := utm_source, medium := utm_medium, name := utm_campaign,
                                    content := utm_content, term := utm_term),
            page := struct_pack(url := url, path := path, referrer := referrer, title := title),
            locale := locale, ip := ip))
        else to_json(struct_pack(
            page := struct_pack(url := url, path := path, referrer := referrer, title := title),
            locale := locale, ip := ip)) end
))::varchar as line
from base
order by row
"""
