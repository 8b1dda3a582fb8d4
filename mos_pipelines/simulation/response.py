"""The true response rates of the world, with the scenario's planted effects and null slices applied.

- A session converts (places an order) with probability
  ``conversion_rate × channel factor[channel, region] × person's propensity / mean propensity``
  (× the email variant's conversion multiplier for sessions from an email click).
- An email is opened / clicked with the arm's rates per region (clicks only among opens), times the
  scenario's heterogeneous ``segment_effects`` for the recipient's persona, size band, seniority, industry or
  sign-up recency (none by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mos_pipelines.simulation.channels import CHANNEL_NAMES, CHANNELS
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.scenario import (
    SEGMENT_ATTRIBUTES,
    SIGNUP_RECENCY,
    ChannelConversion,
    ChannelsEqual,
    EmailCampaignSpec,
    Scenario,
    VariantLift,
    VariantsEqual,
)

MAX_CONVERSION_PROBABILITY = 0.9


@dataclass(frozen=True)
class ArmRates:
    """True rates of one email variant: arrays indexed by region."""

    open: np.ndarray  # opens per delivered email
    click: np.ndarray  # clicks per delivered email
    conversion_multiplier: np.ndarray  # on the session conversion probability of its clicks


class ResponseModel:
    """True rates derived from the scenario; the arrays are what the daily simulation samples from."""

    def __init__(self, scenario: Scenario, region_propensity_factor: np.ndarray) -> None:
        self.scenario = scenario
        self.region_propensity_factor = region_propensity_factor  # mean propensity factor per region
        base = np.array([[CHANNELS[c].conversion_factor] * len(REGIONS) for c in CHANNEL_NAMES])
        for null in scenario.null_slices:
            if isinstance(null, ChannelsEqual):
                rows = [CHANNEL_NAMES.index(c) for c in null.channels]
                r = REGIONS.index(null.region)
                base[rows, r] = base[rows, r].mean()
        for effect in scenario.effects:
            if isinstance(effect, ChannelConversion):
                base[CHANNEL_NAMES.index(effect.channel), REGIONS.index(effect.region)] *= effect.multiplier
        # conversion probability per session at propensity factor 1, [channel, region]
        self.conversion = scenario.behaviour.conversion_rate * base
        self.arms: dict[tuple[str, str], ArmRates] = {}
        for spec in scenario.email_campaigns:
            for variant in spec.variants:
                self.arms[(spec.campaign_id, variant.variant_id)] = self._arm(spec, variant.variant_id)

    def _arm(self, spec: EmailCampaignSpec, variant_id: str) -> ArmRates:
        email = self.scenario.email
        variant = next(v for v in spec.variants if v.variant_id == variant_id)
        open_rate = np.array([email.open_rate[r] for r in REGIONS]) * variant.open_multiplier
        click_rate = np.array([email.click_rate[r] for r in REGIONS]) * variant.click_multiplier
        conversion = np.ones(len(REGIONS))
        for effect in self.scenario.effects:
            if isinstance(effect, VariantLift) and (effect.campaign, effect.variant) == (spec.campaign_id, variant_id):
                r = REGIONS.index(effect.region)
                target = {"open": open_rate, "click": click_rate, "conversion": conversion}[effect.metric]
                target[r] *= 1 + effect.lift
        for null in self.scenario.null_slices:
            if isinstance(null, VariantsEqual) and null.campaign == spec.campaign_id:
                r = REGIONS.index(null.region)
                open_rate[r], click_rate[r], conversion[r] = (
                    email.open_rate[null.region],
                    email.click_rate[null.region],
                    1.0,
                )
        open_rate = np.clip(open_rate, 0, 1)
        return ArmRates(open_rate, np.minimum(click_rate, open_rate), conversion)

    def segment_multipliers(
        self, campaign_id: str, variant_id: str, attributes: dict[str, np.ndarray], n: int
    ) -> dict[str, np.ndarray]:
        """Per recipient: open, click and conversion multipliers of the variant from the segment effects."""
        out = {metric: np.ones(n) for metric in ("open", "click", "conversion")}
        for effect in self.scenario.segment_effects:
            if (effect.campaign, effect.variant) == (campaign_id, variant_id):
                out[effect.metric][attributes[effect.attribute] == effect.value] *= 1 + effect.lift
        return out

    def recipient_rates(
        self, campaign_id: str, variant_id: str, region: np.ndarray, attributes: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per recipient of a variant: open and click probability per delivered email, conversion multiplier."""
        arm = self.arms[(campaign_id, variant_id)]
        open_p, click_p, conversion = arm.open[region], arm.click[region], arm.conversion_multiplier[region]
        if self.scenario.segment_effects:
            mult = self.segment_multipliers(campaign_id, variant_id, attributes, len(region))
            open_p = np.clip(open_p * mult["open"], 0, 1)
            click_p = np.minimum(click_p * mult["click"], open_p)
            conversion = conversion * mult["conversion"]
        return open_p, click_p, conversion

    def session_conversion(
        self, channel: np.ndarray, region: np.ndarray, propensity_factor: np.ndarray, multiplier: np.ndarray
    ) -> np.ndarray:
        """Order probability of each session."""
        p = self.conversion[channel, region] * propensity_factor * multiplier
        return np.clip(p, 0, MAX_CONVERSION_PROBABILITY)

    # -- truth ---------------------------------------------------------------------------------

    def arm_rates(self) -> pd.DataFrame:
        """True rates per email campaign × variant × region (conversion = per click-through session)."""
        email_channel = CHANNEL_NAMES.index("email")
        rows = []
        for (campaign_id, variant_id), arm in self.arms.items():
            for r, region in enumerate(REGIONS):
                rows.append(
                    {
                        "campaign_id": campaign_id,
                        "variant_id": variant_id,
                        "region": region,
                        "open_rate": round(float(arm.open[r]), 6),
                        "click_rate": round(float(arm.click[r]), 6),
                        "conversion_rate": round(
                            float(
                                min(
                                    MAX_CONVERSION_PROBABILITY,
                                    self.conversion[email_channel, r]
                                    * arm.conversion_multiplier[r]
                                    * self.region_propensity_factor[r],
                                )
                            ),
                            6,
                        ),
                    }
                )
        return pd.DataFrame(rows)

    def arm_segment_rates(self) -> pd.DataFrame:
        """True rates per campaign × variant × segment (attribute = value) × region, for the campaigns and
        attributes the segment effects name (``truth/arm_segment_rates.csv``; empty without segment effects)."""
        from mos_pipelines.simulation.population import PROPENSITY_ATTRIBUTES  # population imports scenario

        email_channel = CHANNEL_NAMES.index("email")
        named = sorted({(e.campaign, e.attribute) for e in self.scenario.segment_effects})
        rows = []
        for spec in self.scenario.email_campaigns:
            for campaign_id, attribute in named:
                if campaign_id != spec.campaign_id:
                    continue
                values = SIGNUP_RECENCY if attribute == "signup_recency" else PROPENSITY_ATTRIBUTES[attribute]
                for value in values:
                    region = np.arange(len(REGIONS))
                    attrs = {a: np.full(len(REGIONS), "", dtype=object) for a in SEGMENT_ATTRIBUTES}
                    attrs[attribute] = np.full(len(REGIONS), value, dtype=object)
                    for variant in spec.variants:
                        open_p, click_p, conversion = self.recipient_rates(
                            spec.campaign_id, variant.variant_id, region, attrs
                        )
                        for r, name in enumerate(REGIONS):
                            rate = self.conversion[email_channel, r] * conversion[r] * self.region_propensity_factor[r]
                            rows.append(
                                {
                                    "campaign_id": spec.campaign_id,
                                    "variant_id": variant.variant_id,
                                    "attribute": attribute,
                                    "value": value,
                                    "region": name,
                                    "open_rate": round(float(open_p[r]), 6),
                                    "click_rate": round(float(click_p[r]), 6),
                                    "conversion_rate": round(float(min(MAX_CONVERSION_PROBABILITY, rate)), 6),
                                }
                            )
        columns = ["campaign_id", "variant_id", "attribute", "value", "region", "open_rate", "click_rate"]
        return pd.DataFrame(rows, columns=[*columns, "conversion_rate"])

    def channel_rates(self) -> pd.DataFrame:
        """Expected order probability per session by channel × region (over the region's people)."""
        rows = []
        for c, channel in enumerate(CHANNEL_NAMES):
            for r, region in enumerate(REGIONS):
                rows.append(
                    {
                        "channel": channel,
                        "region": region,
                        "conversion_rate": round(float(self.conversion[c, r] * self.region_propensity_factor[r]), 6),
                        "cpc_usd": CHANNELS[channel].cpc_usd or None,
                    }
                )
        return pd.DataFrame(rows)

    def planted_effects(self) -> dict[str, object]:
        """Effects and null slices as applied, with the resulting true rates (for truth JSON)."""
        arm_rates = self.arm_rates()
        channel_rates = self.channel_rates()
        effects = []
        for effect in self.scenario.effects:
            entry: dict[str, object] = {"type": _kind(effect), **asdict(effect)}
            if isinstance(effect, ChannelConversion):
                rows = channel_rates[channel_rates["region"] == effect.region]
                entry["conversion_rate_by_channel"] = dict(zip(rows["channel"], rows["conversion_rate"]))
            else:
                rows = arm_rates[(arm_rates["campaign_id"] == effect.campaign) & (arm_rates["region"] == effect.region)]
                entry[f"{effect.metric}_rate_by_variant"] = dict(zip(rows["variant_id"], rows[f"{effect.metric}_rate"]))
            effects.append(entry)
        null_slices = []
        for null in self.scenario.null_slices:
            entry = {"type": _kind(null), **asdict(null)}
            if isinstance(null, ChannelsEqual):
                rows = channel_rates[
                    (channel_rates["region"] == null.region) & channel_rates["channel"].isin(null.channels)
                ]
                entry["conversion_rate_by_channel"] = dict(zip(rows["channel"], rows["conversion_rate"]))
            else:
                rows = arm_rates[(arm_rates["campaign_id"] == null.campaign) & (arm_rates["region"] == null.region)]
                entry["rates_by_variant"] = {
                    v: {"open_rate": o, "click_rate": c, "conversion_rate": k}
                    for v, o, c, k in zip(
                        rows["variant_id"], rows["open_rate"], rows["click_rate"], rows["conversion_rate"]
                    )
                }
            null_slices.append(entry)
        volume = [asdict(change) for change in self.scenario.volume]  # traffic changes (week-over-week anomalies)
        planted: dict[str, object] = {"effects": effects, "null_slices": null_slices, "volume_changes": volume}
        if self.scenario.segment_effects:  # only then: worlds without them keep their exact truth files
            segment_rates = self.arm_segment_rates()
            entries = []
            for lift in self.scenario.segment_effects:
                rows = segment_rates[
                    (segment_rates["campaign_id"] == lift.campaign)
                    & (segment_rates["attribute"] == lift.attribute)
                    & (segment_rates["value"] == lift.value)
                ]
                by_variant = rows.groupby("variant_id")[f"{lift.metric}_rate"].mean().round(6)
                entries.append(
                    {
                        "type": "variant_segment_lift",
                        **asdict(lift),
                        f"{lift.metric}_rate_by_variant": by_variant.to_dict(),
                    }
                )
            planted["segment_effects"] = entries
        return planted


def _kind(item: object) -> str:
    return {
        ChannelConversion: "channel_conversion",
        VariantLift: "variant_lift",
        VariantsEqual: "variants_equal",
        ChannelsEqual: "channels_equal",
    }[type(item)]
