"""Marketing channels: how a visit from each arrives on the site and where its spend is reported.

This table is the truth behind the dbt channel-mapping seed: a session whose landing page carries
``utm_source``/``utm_medium`` below belongs to that channel; organic visits have no UTM tags and a
search-engine referrer; direct visits have neither.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    name: str
    utm_source: str | None
    utm_medium: str | None
    referrers: tuple[str, ...]  # referrer of the landing page ("" = none)
    platform: str | None = None  # ad platform folder under landing/ad_spend/ (paid channels)
    cpc_usd: float = 0.0  # cost per click charged by the platform
    ctr: float = 0.0  # clicks per impression
    conversion_factor: float = 1.0  # per-session order probability relative to the base rate


CHANNELS: dict[str, Channel] = {
    c.name: c
    for c in (
        Channel("email", "newsletter", "email", ("",), conversion_factor=1.2),
        Channel("paid_search", "google", "cpc", ("https://www.google.com/",), "google_ads", 4.00, 0.035, 1.3),
        Channel(
            "paid_social",
            "facebook",
            "paid_social",
            ("https://www.facebook.com/", "https://l.instagram.com/"),
            "meta_ads",
            1.50,
            0.012,
            0.7,
        ),
        Channel(
            "linkedin", "linkedin", "paid_social", ("https://www.linkedin.com/",), "linkedin_ads", 7.50, 0.006, 1.1
        ),
        Channel(
            "display",
            "display_network",
            "display",
            ("https://ads.display-network.example/",),
            "display_network",
            0.80,
            0.004,
            0.4,
        ),
        Channel("webinar", "zoom", "webinar", ("https://zoom.us/",), conversion_factor=1.5),
        Channel(
            "organic",
            None,
            None,
            ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"),
            conversion_factor=1.0,
        ),
        Channel("direct", None, None, ("",), conversion_factor=1.1),
    )
}
CHANNEL_NAMES: tuple[str, ...] = tuple(CHANNELS)
PAID_CHANNELS: tuple[str, ...] = tuple(c.name for c in CHANNELS.values() if c.platform)
PLATFORMS: tuple[str, ...] = tuple(CHANNELS[c].platform for c in PAID_CHANNELS)  # type: ignore[misc]

# Share of ordinary (not email-triggered) sessions arriving through each channel.
SESSION_CHANNEL_MIX: dict[str, float] = {
    "organic": 0.30,
    "direct": 0.22,
    "paid_search": 0.16,
    "paid_social": 0.11,
    "linkedin": 0.07,
    "display": 0.09,
    "webinar": 0.05,
}

# Share of UTM-tagged visits whose source/medium arrive capitalised ("Google", "CPC").
UTM_CASE_NOISE_RATE = 0.03

# Search keywords of the two ad groups of every paid-search campaign (utm_term).
SEARCH_TERMS: tuple[str, str] = ("marketing analytics software", "customer data platform")
