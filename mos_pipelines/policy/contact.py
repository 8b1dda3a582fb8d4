"""Contact policy: may this action reach this person at this time, and if not, why.

``evaluate`` is the one implementation: requests (customer, action, UTC time) in, one row each out with
``allowed`` and ``reasons``, from

- the person (time zone, lifecycle stage, ICP tier, consents: ``persons``),
- the contact ledger (``contacts``: customer, channel, UTC time of every acknowledged send),
- conversions (``conversions``: customer, type, UTC time).

Caps are counted on the person's local calendar days (``per_day``: the local day of the request; ``per_7_days``:
that day and the 6 before), contacts after the request's time never count, and the request itself is the
one that would exceed: a cap of 3 allows a request after 2 contacts and refuses one after 3. ``check`` asks for
one person; ``eligibility_table`` builds ``policy.contact_eligibility`` for every customer and action.
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mos_pipelines.configuration.policy import Action, Cap, ContactSettings
from mos_pipelines.policy.tables import ensure_tables, naive_utc
from mos_pipelines.warehouse import columns_of, insert_frame, table_exists, transaction

PERSON_COLUMNS = ("customer_id", "time_zone", "time_zone_source", "lifecycle_stage", "tier", "consents")


# -- time zones ------------------------------------------------------------------------------------------------


@functools.cache
def tz_database_zones() -> dict[str, tuple[str, ...]]:
    """Country (ISO 3166 alpha-2) -> its zones in the tz database's ``zone.tab`` order (most populous first where
    geography allows), from the ``tzdata`` package or the system's zoneinfo."""
    text = None
    try:
        text = (importlib.resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        for folder in zoneinfo.TZPATH:
            path = Path(folder) / "zone.tab"
            if path.exists():
                text = path.read_text()
                break
    zones: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones.setdefault(parts[0].upper(), []).append(parts[2])
    return {country: tuple(z) for country, z in zones.items()}


def zone_for(country: str | None, explicit: str | None, settings: ContactSettings) -> tuple[str, str]:
    """(IANA zone, where it came from) for a person: an explicit valid zone, else the country's, else default."""
    if explicit:
        try:
            zoneinfo.ZoneInfo(explicit)
            return explicit, "explicit"
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    if country:
        code = country.strip().upper()
        if code in settings.time_zones.by_country:
            return settings.time_zones.by_country[code], f"country {code} (policy.yaml by_country)"
        zones = tz_database_zones().get(code)
        if zones:
            return zones[0], f"country {code} (tz database)"
    return settings.time_zones.default, "default"


def local_times(utc: pd.Series, zones: pd.Series) -> pd.Series:
    """Naive UTC times as naive local wall-clock times in each row's zone (vectorised per zone)."""
    out = pd.Series(pd.NaT, index=utc.index, dtype="datetime64[us]")
    stamps = pd.to_datetime(utc).astype("datetime64[us]")
    for zone, index in zones.groupby(zones).groups.items():
        converted = stamps.loc[index].dt.tz_localize("UTC").dt.tz_convert(str(zone)).dt.tz_localize(None)
        out.loc[index] = converted.astype("datetime64[us]")
    return out


# -- evaluation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    reasons: tuple[str, ...]
    local_time: datetime.datetime
    time_zone: str


def _in_quiet_hours(local: pd.Series, settings: ContactSettings) -> pd.Series:
    start, end = settings.quiet_hours.bounds()
    minutes = local.dt.hour * 60 + local.dt.minute
    s, e = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    if s == e:
        return pd.Series(False, index=local.index)
    if s < e:
        return (minutes >= s) & (minutes < e)
    return (minutes >= s) | (minutes < e)


def evaluate(
    requests: pd.DataFrame,
    persons: pd.DataFrame,
    contacts: pd.DataFrame,
    conversions: pd.DataFrame,
    settings: ContactSettings,
) -> pd.DataFrame:
    """One row per request (``customer_id``, ``action``, ``at``: naive UTC) with ``allowed`` and ``reasons``.

    ``persons``: ``customer_id, time_zone, lifecycle_stage, tier, consents`` (a set of consented purposes; a
    person missing from it has none, no stage and no tier, and the default time zone). ``contacts``:
    ``customer_id, channel, contacted_at``. ``conversions``: ``customer_id, conversion_type, converted_at``."""
    req = requests[["customer_id", "action", "at"]].copy().reset_index(drop=True)
    unknown = sorted(set(req["action"]) - set(settings.actions))
    if unknown:
        raise KeyError(f"unknown action(s) {', '.join(unknown)}: expected one of {', '.join(settings.actions)}")
    req["customer_id"] = req["customer_id"].astype(str)
    req["at"] = pd.to_datetime(req["at"]).astype("datetime64[us]")
    people = persons.copy()
    people["customer_id"] = people["customer_id"].astype(str)
    req = req.merge(people, on="customer_id", how="left")
    missing_zone = req["time_zone"].isna()
    req.loc[missing_zone, "time_zone"] = settings.time_zones.default
    if "time_zone_source" not in req:
        req["time_zone_source"] = "given"
    req.loc[missing_zone, "time_zone_source"] = "default"
    req["channel"] = req["action"].map({name: a.channel for name, a in settings.actions.items()})
    req["local_time"] = local_times(req["at"], req["time_zone"])
    req["local_day"] = req["local_time"].dt.normalize()
    req["_row"] = range(len(req))

    # contacts on the person's local days, up to the request's time
    counted = contacts[contacts["channel"].isin(settings.counted_channels)] if len(contacts) else contacts
    for name in ("channel_contacts_day", "channel_contacts_7d", "contacts_day", "contacts_7d"):
        req[name] = 0
    if len(counted):
        pairs = req[["_row", "customer_id", "at", "local_day", "time_zone", "channel"]].merge(
            counted.assign(customer_id=counted["customer_id"].astype(str)).rename(
                columns={"channel": "contact_channel"}
            ),
            on="customer_id",
        )
        pairs = pairs[pd.to_datetime(pairs["contacted_at"]).astype("datetime64[us]") <= pairs["at"]]
        if len(pairs):
            pairs = pairs.reset_index(drop=True)
            contact_day = local_times(pairs["contacted_at"], pairs["time_zone"]).dt.normalize()
            age = (pairs["local_day"] - contact_day).dt.days
            same_day = age == 0
            week = (age >= 0) & (age <= 6)
            same_channel = pairs["contact_channel"] == pairs["channel"]
            counts = (
                pd.DataFrame(
                    {
                        "_row": pairs["_row"],
                        "contacts_day": same_day.astype(int),
                        "contacts_7d": week.astype(int),
                        "channel_contacts_day": (same_day & same_channel).astype(int),
                        "channel_contacts_7d": (week & same_channel).astype(int),
                    }
                )
                .groupby("_row")
                .sum()
            )
            for name in counts.columns:
                req[name] = req["_row"].map(counts[name]).fillna(0).astype(int)

    # the latest conversion that starts a cool-down, at or before the request
    req["last_conversion_at"] = pd.Series(pd.NaT, index=req.index, dtype="datetime64[us]")
    relevant = (
        conversions[conversions["conversion_type"].isin(settings.cooldown.after)] if len(conversions) else conversions
    )
    if len(relevant):
        pairs = req[["_row", "customer_id", "at"]].merge(
            relevant.assign(customer_id=relevant["customer_id"].astype(str)), on="customer_id"
        )
        pairs["converted_at"] = pd.to_datetime(pairs["converted_at"]).astype("datetime64[us]")
        pairs = pairs[pairs["converted_at"] <= pairs["at"]]
        if len(pairs):
            latest = pairs.groupby("_row")["converted_at"].max()
            req["last_conversion_at"] = req["_row"].map(latest).astype("datetime64[us]")

    quiet = _in_quiet_hours(req["local_time"], settings).to_numpy()
    cooldown_until = req["last_conversion_at"] + pd.to_timedelta(settings.cooldown.days, unit="D")
    in_cooldown = (req["last_conversion_at"].notna() & (req["at"] < cooldown_until)).to_numpy()
    reasons: list[list[str]] = [[] for _ in range(len(req))]
    for name, rows in req.groupby("action", sort=False).indices.items():
        _action_reasons(req.iloc[rows], quiet[rows], in_cooldown[rows], settings.actions[name], settings, rows, reasons)
    req["reasons"] = reasons
    req["allowed"] = [not r for r in reasons]
    return req[
        [
            "customer_id",
            "action",
            "at",
            "channel",
            "allowed",
            "reasons",
            "time_zone",
            "time_zone_source",
            "local_time",
            "channel_contacts_day",
            "channel_contacts_7d",
            "contacts_day",
            "contacts_7d",
            "last_conversion_at",
        ]
    ]


def _formatted(stamps: pd.Series, pattern: str) -> pd.Series:
    """``stamps`` as text, each distinct time formatted once (a day's requests share a handful of local times)."""
    distinct = stamps.drop_duplicates()
    return stamps.map(pd.Series(distinct.dt.strftime(pattern).to_numpy(), index=distinct.to_numpy()))


def _action_reasons(
    req: pd.DataFrame,
    quiet: np.ndarray,
    in_cooldown: np.ndarray,
    action: Action,
    settings: ContactSettings,
    rows: np.ndarray,
    reasons: list[list[str]],
) -> None:
    """Append to ``reasons[rows]`` why each of one action's requests may not go, rule by rule in the policy's order:
    stage, tier, consent, quiet hours, cool-down, the channel's caps, the all-channel caps."""
    rules: list[tuple[np.ndarray, pd.Series]] = []  # (where it fails, its text there)

    def add(mask: np.ndarray, texts) -> None:  # noqa: ANN001 (a callable of the failing rows)
        if mask.any():
            rules.append((mask, texts(req[mask])))

    def known(values: pd.Series) -> pd.Series:
        return values.map(lambda v: v if isinstance(v, str) else "unknown")

    if action.stages is not None:
        allowed = ", ".join(action.stages)
        add(
            ~req["lifecycle_stage"].isin(action.stages).to_numpy(),
            lambda r: "lifecycle stage " + known(r["lifecycle_stage"]) + f" is not one of {allowed}",
        )
    if action.tiers is not None:
        allowed_tiers = ", ".join(action.tiers)
        add(
            ~req["tier"].isin(action.tiers).to_numpy(),
            lambda r: "ICP tier " + known(r["tier"]) + f" is not one of {allowed_tiers}",
        )
    if action.consent is not None:
        purpose = action.consent
        missing = [
            not (isinstance(c, (set, frozenset, list, tuple)) and purpose in c) for c in req["consents"].tolist()
        ]
        add(np.asarray(missing, dtype=bool), lambda r: pd.Series(f"no {purpose} consent", index=r.index))
    if action.quiet_hours:
        hours = f"quiet hours {settings.quiet_hours.start}–{settings.quiet_hours.end} in "
        add(quiet, lambda r: hours + r["time_zone"] + " (local time " + _formatted(r["local_time"], "%H:%M") + ")")
    if action.cooldown:
        days = f"{settings.cooldown.days:g}"
        add(
            in_cooldown,
            lambda r: (
                "cool-down: converted at "
                + _formatted(r["last_conversion_at"], "%Y-%m-%d %H:%M")
                + f" UTC, {days} days before the next action"
            ),
        )
    if action.capped:
        if action.channel in settings.counted_channels:
            _cap_rules(
                req,
                "channel_contacts_day",
                "channel_contacts_7d",
                settings.caps.per_channel.get(action.channel),
                action.channel,
                add,
            )
        _cap_rules(req, "contacts_day", "contacts_7d", settings.caps.all_channels, "all-channel", add)
    for mask, texts in rules:
        for row, text in zip(rows[mask], texts.tolist(), strict=True):
            reasons[row].append(text)


def _cap_rules(req: pd.DataFrame, day: str, week: str, cap: Cap | None, what: str, add) -> None:  # noqa: ANN001
    """Why a request after ``req[day]`` contacts today and ``req[week]`` in 7 local days would break ``cap``."""
    if cap is None:
        return
    if cap.per_day is not None:
        add(
            (req[day] >= cap.per_day).to_numpy(),
            lambda r: f"{what} cap {cap.per_day}/day reached (" + r[day].astype(str) + " today, local time)",
        )
    if cap.per_7_days is not None:
        add(
            (req[week] >= cap.per_7_days).to_numpy(),
            lambda r: (
                f"{what} cap {cap.per_7_days}/7 days reached (" + r[week].astype(str) + " in the last 7 local days)"
            ),
        )


def check(
    customer_id: str,
    action: str,
    at: datetime.datetime,
    persons: pd.DataFrame,
    contacts: pd.DataFrame,
    conversions: pd.DataFrame,
    settings: ContactSettings,
) -> Eligibility:
    """May ``action`` reach ``customer_id`` at ``at`` (UTC)? With every reason it may not."""
    row = evaluate(
        pd.DataFrame({"customer_id": [customer_id], "action": [action], "at": [naive_utc(at)]}),
        persons,
        contacts,
        conversions,
        settings,
    ).iloc[0]
    return Eligibility(bool(row["allowed"]), tuple(row["reasons"]), row["local_time"].to_pydatetime(), row["time_zone"])


def send_time_rules(settings: ContactSettings, channel: str) -> ContactSettings | None:
    """The contact policy as it applies when a send on ``channel`` goes out: the frequency caps and, if any action
    through the channel keeps quiet hours, the quiet hours (stage, tier, consent and cool-down were the decision's).
    None when the channel is not counted: its sends are not contacts."""
    if channel not in settings.counted_channels:
        return None
    quiet = any(a.quiet_hours for a in settings.actions.values() if a.channel == channel)
    send = Action(channel=channel, capped=True, quiet_hours=quiet, cooldown=False)
    return settings.model_copy(update={"actions": {SEND_ACTION: send}})


SEND_ACTION = "send"


def send_time_check(
    con: duckdb.DuckDBPyConnection,
    settings: ContactSettings,
    channel: str,
    customer_ids: list[str],
    at: datetime.datetime,
) -> dict[str, list[str]]:
    """customer id -> why a send on ``channel`` may not reach them at ``at`` (caps, quiet hours in their time zone);
    people who may be contacted are left out. Every send of one run counts against the next one's caps only once
    acknowledged, so a run sends a person at most what the caps leave (one send per person and destination)."""
    rules = send_time_rules(settings, channel)
    if rules is None or not customer_ids:
        return {}
    persons, _ = load_persons(con, settings)
    requests = pd.DataFrame({"customer_id": list(customer_ids), "action": SEND_ACTION, "at": naive_utc(at)})
    checked = evaluate(requests, persons, load_contacts(con), load_conversions(con, ("",)), rules)
    return {
        c: list(r)
        for c, r, ok in zip(checked["customer_id"], checked["reasons"], checked["allowed"], strict=True)
        if not ok
    }


# -- the warehouse ---------------------------------------------------------------------------------------------


def load_contacts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Acknowledged sends of the activation ledger, per customer: ``customer_id, channel, contacted_at``."""
    if not (table_exists(con, "ops", "activation_attempts") and table_exists(con, "ops", "activation_ledger")):
        return pd.DataFrame({"customer_id": [], "channel": [], "contacted_at": []})
    return con.execute(
        """
        select distinct l.customer_id, a.channel, a.attempted_at as contacted_at
        from ops.activation_attempts a
        inner join ops.activation_ledger l on l.destination = a.destination and l.record_key = a.record_key
        where a.status = 'acknowledged' and coalesce(a.operation, 'upsert') = 'upsert' and l.customer_id is not null
        """
    ).df()


def load_conversions(con: duckdb.DuckDBPyConnection, types: tuple[str, ...]) -> pd.DataFrame:
    if not table_exists(con, "marts", "fct_conversions"):
        return pd.DataFrame({"customer_id": [], "conversion_type": [], "converted_at": []})
    placeholders = ", ".join("?" for _ in types)
    return con.execute(
        "select customer_id, conversion_type, converted_at from marts.fct_conversions "
        f"where customer_id is not null and conversion_type in ({placeholders})",
        list(types),
    ).df()


def load_persons(
    con: duckdb.DuckDBPyConnection, settings: ContactSettings, tiers: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Every customer of ``marts.dim_customer_features`` with what the contact policy reads about them;
    ``tiers`` (``customer_id, tier``) stands in for ``policy.icp_scores`` when given."""
    notes: list[str] = []
    features = set(columns_of(con, "marts", "dim_customer_features"))
    if not features:
        raise RuntimeError("marts.dim_customer_features does not exist: build the customer marts first")
    country = "country_code" if "country_code" in features else "cast(null as varchar)"
    explicit = "time_zone" if "time_zone" in features else "cast(null as varchar)"
    frame = con.execute(
        f"select cast(customer_id as varchar) as customer_id, {country} as country_code, {explicit} as explicit_zone "
        "from marts.dim_customer_features order by customer_id"
    ).df()
    if "country_code" not in features:
        notes.append("marts.dim_customer_features has no country_code: every person gets the default time zone")
    zones = {
        (c, e): zone_for(c if isinstance(c, str) else None, e if isinstance(e, str) else None, settings)
        for c, e in frame[["country_code", "explicit_zone"]].drop_duplicates().itertuples(index=False)
    }
    picked = [zones[(c, e)] for c, e in frame[["country_code", "explicit_zone"]].itertuples(index=False)]
    frame["time_zone"] = [z for z, _ in picked]
    frame["time_zone_source"] = [s for _, s in picked]
    if table_exists(con, "marts", "dim_customer_lifecycle"):
        stages = con.execute(
            "select cast(customer_id as varchar) as customer_id, lifecycle_stage from marts.dim_customer_lifecycle"
        ).df()
        frame = frame.merge(stages, on="customer_id", how="left")
    else:
        frame["lifecycle_stage"] = None
        notes.append("marts.dim_customer_lifecycle does not exist: actions limited to stages allow no one")
    if tiers is not None or table_exists(con, "policy", "icp_scores"):
        if tiers is None:
            tiers = con.execute("select customer_id, tier from policy.icp_scores").df()
        frame = frame.merge(tiers[["customer_id", "tier"]], on="customer_id", how="left")
    else:
        frame["tier"] = None
        notes.append("policy.icp_scores does not exist: actions limited to tiers allow no one")
    if table_exists(con, "marts", "dim_customer_consents"):
        consented = con.execute(
            "select cast(customer_id as varchar) as customer_id, list(distinct purpose order by purpose) as consents "
            "from marts.dim_customer_consents where is_consented group by 1"
        ).df()
        frame = frame.merge(consented, on="customer_id", how="left")
        frame["consents"] = [set(c) if _is_list(c) else set() for c in frame["consents"]]
    else:
        frame["consents"] = [set() for _ in range(len(frame))]
        notes.append("marts.dim_customer_consents does not exist: actions that need consent allow no one")
    return frame[list(PERSON_COLUMNS)], notes


def _is_list(value: object) -> bool:
    return value is not None and not isinstance(value, (str, float)) and hasattr(value, "__iter__")


def eligibility_frame(
    con: duckdb.DuckDBPyConnection,
    settings: ContactSettings,
    version: str,
    now: datetime.datetime,
    tiers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Every customer × action evaluated at ``now``, as ``policy.contact_eligibility`` holds it (reads only)."""
    persons, notes = load_persons(con, settings, tiers)
    contacts = load_contacts(con)
    conversions = load_conversions(con, settings.cooldown.after)
    at = naive_utc(now)
    requests = pd.DataFrame(
        {
            "customer_id": [c for c in persons["customer_id"] for _ in settings.actions],
            "action": list(settings.actions) * len(persons),
            "at": at,
        }
    )
    result = evaluate(requests, persons, contacts, conversions, settings)
    frame = result.drop(columns=["at"]).assign(evaluated_at=pd.Timestamp(at), policy_version=version)
    return frame, notes


def eligibility_table(
    con: duckdb.DuckDBPyConnection, settings: ContactSettings, version: str, now: datetime.datetime
) -> tuple[pd.DataFrame, list[str]]:
    """Every customer × action evaluated at ``now``; replaces ``policy.contact_eligibility``."""
    frame, notes = eligibility_frame(con, settings, version, now)
    ensure_tables(con)
    with transaction(con):
        con.execute("delete from policy.contact_eligibility")
        if len(frame):
            insert_frame(con, "policy.contact_eligibility", frame)
    return frame, notes
