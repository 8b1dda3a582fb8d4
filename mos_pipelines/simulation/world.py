"""``generate_world``: build the population, simulate day by day, write landing files and truth.

Day ``d`` only draws from streams keyed by ``d`` and only reads state left by days before it, so
the files of the first N days are the same whatever the horizon.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mos_pipelines.simulation.ad_spend import ad_spend_day, ad_spend_header, ad_spend_rows
from mos_pipelines.simulation.campaigns import Campaign, build_campaigns, campaign_header, campaign_rows
from mos_pipelines.simulation.channels import CHANNEL_NAMES, PLATFORMS
from mos_pipelines.simulation.commerce import order_header, order_rows, orders_for_sessions
from mos_pipelines.simulation.config import WorldConfig, WorldSummary
from mos_pipelines.simulation.consent import ConsentState, consent_header, plan_consent
from mos_pipelines.simulation.crm import FILE_STEMS, CrmRecords, crm_header, crm_systems, plan_crm_records
from mos_pipelines.simulation.dirty_data import (
    assemble_events_file,
    dirty_rng,
    inject_csv,
    inject_jsonl,
    plan_event_delivery,
)
from mos_pipelines.simulation.email_engagement import (
    NOT_IN_AUDIENCE,
    EmailAssignment,
    EmailDay,
    assign_variants,
    email_header,
    email_rows,
    set_click_times,
    simulate_sends,
)
from mos_pipelines.simulation.events import ORDER_COMPLETED, EventRenderer, event_timeline
from mos_pipelines.simulation.expected import ExpectedMetrics
from mos_pipelines.simulation.geography import REGIONS
from mos_pipelines.simulation.notes import notes_day
from mos_pipelines.simulation.population import Population, build_population, propensity_model
from mos_pipelines.simulation.respond import respond
from mos_pipelines.simulation.response import ResponseModel
from mos_pipelines.simulation.scenario import Scenario, load_scenario
from mos_pipelines.simulation.sessions import CampaignIndex, DaySessions, simulate_sessions
from mos_pipelines.simulation.streams import Stream, rng
from mos_pipelines.simulation.timestamps import day_of
from mos_pipelines.simulation.truth import TruthWriter, dirty_rows, fx_rates, manifest
from mos_pipelines.simulation.writers import DUPLICATE, LATE, LandingFile, ManifestEntry, write_landing_file

Progress = Callable[[str, int, int], None]


def generate_world(config: WorldConfig, mos_home: Path, progress: Progress | None = None) -> WorldSummary:
    """Write a simulated landing zone to ``mos_home/landing`` and its truth to ``mos_home/truth``.

    Files already in the landing folder are overwritten when this run writes a file of the same
    name and left alone otherwise.
    """
    began = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    scenario = load_scenario(config.scenario)
    mos_home = Path(mos_home)
    run = _WorldRun(config, scenario, mos_home, report)
    try:
        run.simulate()
        truth_files = run.write_truth()
    finally:
        run.close()
    entries = run.entries
    rows: Counter[str] = Counter()
    files: Counter[str] = Counter()
    for e in entries:
        rows[e.source] += e.rows_total
        files[e.source] += 1
    return WorldSummary(
        landing_dir=run.landing_dir,
        truth_dir=run.truth_dir,
        files=tuple(e.path for e in entries),
        rows_per_source=dict(rows),
        files_per_source=dict(files),
        dirty_rows=dict(sorted(Counter(f"{source}.{kind}" for source, kind in run.dirty_kinds).items())),
        seconds=round(time.perf_counter() - began, 3),
        truth_files=tuple(truth_files),
    )


class SteppedWorld:
    """The simulated world run one day at a time with its email programme decided outside it.

    The closed loop (``mos simulate``) asks who the programme targets on a day (``audience``:
    addresses only, what a marketing list holds), decides the variant or holdout of each, and hands
    the sends to ``step``: the world answers with ``respond`` and writes the day's landing files
    (email events, the visits and orders those clicks lead to, and everything else the world does
    that day). ``finish`` writes the truth. Same config and same sends, same files.
    """

    def __init__(self, config: WorldConfig, mos_home: Path, progress: Progress | None = None) -> None:
        self.config = config
        self._run = _WorldRun(
            config, load_scenario(config.scenario), Path(mos_home), progress or (lambda stage, done, total: None)
        )
        self._run._write(
            LandingFile(
                "campaigns/campaigns.csv",
                "campaigns",
                campaign_header(),
                campaign_rows(self._run.campaigns, self._run.start),
            )
        )
        self._next_day = 0
        people = self._run.population.people
        self._email = people["marketing_email"].to_numpy()

    @property
    def scenario(self) -> Scenario:
        return self._run.scenario

    @property
    def start(self) -> datetime.date:
        return self._run.start

    @property
    def landing_dir(self) -> Path:
        return self._run.landing_dir

    def audience(self, day: int) -> pd.DataFrame:
        """Addresses each email campaign sending on ``day`` targets (its list, with email consent that day)."""
        allowed = self._run.consent.email_allowed(day)
        frames = []
        for spec in self.scenario.email_campaigns:
            if not spec.sends_on(day):
                continue
            member = (self._run.assignment.variant[spec.campaign_id] != NOT_IN_AUDIENCE) & allowed
            frames.append(pd.DataFrame({"campaign_id": spec.campaign_id, "recipient_email": self._email[member]}))
        if not frames:
            return pd.DataFrame({"campaign_id": pd.Series(dtype=object), "recipient_email": pd.Series(dtype=object)})
        return pd.concat(frames, ignore_index=True)

    def step(self, day: int, sends: pd.DataFrame) -> pd.DataFrame:
        """Simulate ``day`` with these sends (see ``respond``); returns each send with its outcome (truth)."""
        if day != self._next_day:
            raise ValueError(f"days are simulated in order: expected day {self._next_day}, got {day}")
        if day >= self.config.days:
            raise ValueError(f"day {day} is beyond the world's horizon of {self.config.days} days")
        run = self._run
        email = respond(day, run.seed, run.population, run.scenario, run.response, sends)
        self._next_day += 1
        return run._simulate_day(day, email)

    # -- truth, for scoring a policy (never for deciding) --------------------------------------------

    def arm_rates(self) -> pd.DataFrame:
        """True rates per campaign × variant × region (``truth/arm_rates.csv``)."""
        return self._run.response.arm_rates()

    def true_regions(self) -> pd.Series:
        """Recipient address -> the person's true region."""
        people = self._run.population.people
        return pd.Series(people["region"].to_numpy(), index=self._email).loc[lambda s: ~s.index.duplicated()]

    def bounce_rate(self) -> float:
        return self.scenario.email.bounce_rate

    def finish(self) -> list[str]:
        """Write the truth of the days simulated so far (none if no day was) and release the scratch space."""
        try:
            return self._run.write_truth() if self._next_day > 0 else []
        finally:
            self._run.close()


class _WorldRun:
    """State of one generation run: the world, the output folders and the truth collected per day."""

    def __init__(self, config: WorldConfig, scenario: Scenario, mos_home: Path, report: Progress) -> None:
        self.config = config
        self.scenario = scenario
        self.seed = config.seed
        self.start = config.start_date
        self.report = report
        self.landing_dir = mos_home / "landing"
        self.truth_dir = mos_home / "truth"
        self.scratch_dir = mos_home / ".simulation-scratch"
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.entries: list[ManifestEntry] = []
        self.dirty: list[tuple[str, int, str]] = []
        self.dirty_kinds: list[tuple[str, str]] = []
        self.truth: dict[str, list[pd.DataFrame]] = defaultdict(list)
        # events written to a later day's file: day -> [(line, kind, session id or None)]
        self.carried: dict[int, list[tuple[str, str, str | None]]] = defaultdict(list)

        report("population", 0, 1)
        self.population: Population = build_population(self.seed, config.people, scenario, self.start)
        self.crm: CrmRecords = plan_crm_records(self.seed, self.population, scenario, self.start)
        self.consent: ConsentState = plan_consent(self.seed, self.population, scenario)
        self.assignment: EmailAssignment = assign_variants(self.seed, self.population, scenario)
        people_per_region = self.population.people["region"].value_counts().to_dict()
        self.campaigns: list[Campaign] = build_campaigns(scenario, people_per_region)
        self.index = CampaignIndex.build(self.campaigns)
        factor = self.population.propensity_factor
        region_factor = np.array(
            [
                factor[self.population.region_idx == r].mean() if (self.population.region_idx == r).any() else 1.0
                for r in range(len(REGIONS))
            ]
        )
        self.response = ResponseModel(scenario, region_factor)
        self.renderer = EventRenderer(self.population, self.seed)
        self.seen_device = np.zeros(len(self.population.devices), dtype=bool)
        self.expected = ExpectedMetrics(self.population, scenario, self.response, self.crm, self.start)
        report("population", 1, 1)

    def close(self) -> None:
        self.renderer.close()
        shutil.rmtree(self.scratch_dir, ignore_errors=True)

    # -- landing ---------------------------------------------------------------------------------

    def _write(self, file: LandingFile) -> None:
        """Write a landing file; a day without records gets no file (empty exports are not written)."""
        if not file.records:
            return
        self.entries.append(write_landing_file(self.landing_dir, self.scratch_dir, file))
        found = dirty_rows(file)
        self.dirty.extend(found)
        self.dirty_kinds.extend((file.source, kind) for _, _, kind in found)

    def simulate(self) -> None:
        self._write(
            LandingFile(
                "campaigns/campaigns.csv", "campaigns", campaign_header(), campaign_rows(self.campaigns, self.start)
            )
        )
        days = self.config.days
        for day in range(days):
            self.report("days", day, days)
            self._simulate_day(day)
        self.report("days", days, days)

    def _simulate_day(self, day: int, email: EmailDay | None = None) -> pd.DataFrame:
        """One day of the world; ``email`` replaces the world's own email programme (the closed loop).

        Returns the day's email sends with what each recipient did (truth)."""
        seed, start, population, scenario = self.seed, self.start, self.population, self.scenario
        stamp = day_of(start, day).isoformat()

        if email is None:
            email = simulate_sends(
                day, seed, population, scenario, self.assignment, self.consent.email_allowed(day), self.response
            )
        sends = email.sends
        sessions = simulate_sessions(
            day,
            seed,
            start,
            population,
            scenario,
            self.response,
            self.index,
            email.clicks,
            self.crm.webinar_registrations(day),
        )
        clicked = np.flatnonzero(sessions.email_send_row >= 0)
        set_click_times(
            sends, sessions.email_send_row[clicked], sessions.start_s[clicked] - 1.0, rng(seed, Stream.EMAIL_TIMES, day)
        )
        sends.loc[sends["clicked"] & sends["clicked_s"].isna(), "clicked"] = False  # a click without a visit
        unsubscribed = sends[sends["unsubscribed"]]
        unsub_person = unsubscribed["person_idx"].to_numpy(dtype=np.int64)
        self.consent.unsubscribed_day[unsub_person] = np.minimum(self.consent.unsubscribed_day[unsub_person], day)
        self.seen_device[sessions.device] = True

        timeline = event_timeline(sessions, rng(seed, Stream.EVENTS, day))
        order_s = timeline.loc[timeline["kind"] == ORDER_COMPLETED, "seconds"].to_numpy()
        orders = orders_for_sessions(sessions, order_s, population, seed)
        events = self.renderer.render(sessions, timeline, orders, self.campaigns, start)
        spend = ad_spend_day(sessions, orders, self.campaigns, seed, start)
        note_lines, note_facts = notes_day(day, seed, start, population, self.crm)
        consent_rows = self.consent.rows(
            day,
            start,
            rng(seed, Stream.CONSENT_DAY, day),
            (unsub_person, unsubscribed["unsubscribed_s"].to_numpy()),
            population.people["marketing_email"].to_numpy(),
        )

        self._write_events(day, stamp, events.lines, sessions, events.session)
        dirty = scenario.dirty
        orders_file = LandingFile(f"orders/orders_{stamp}.csv", "orders", order_header(), order_rows(orders, start))
        inject_csv(orders_file, dirty["orders"], dirty_rng(seed, "orders", day))
        self._write(orders_file)
        email_file = LandingFile(f"email/email_events_{stamp}.csv", "email", email_header(), email_rows(sends, start))
        inject_csv(email_file, dirty["email"], dirty_rng(seed, "email", day))
        self._write(email_file)
        consent_file = LandingFile(f"consent/consent_{stamp}.csv", "consent", consent_header(), consent_rows)
        inject_csv(consent_file, dirty["consent"], dirty_rng(seed, "consent", day))
        self._write(consent_file)
        for part, platform in enumerate(PLATFORMS):
            spend_file = LandingFile(
                f"ad_spend/{platform}/spend_{stamp}.csv", "ad_spend", ad_spend_header(), ad_spend_rows(spend, platform)
            )
            inject_csv(spend_file, dirty["ad_spend"], dirty_rng(seed, "ad_spend", day, part))
            self._write(spend_file)
        for part, system in enumerate(crm_systems(self.scenario)):
            crm_file = LandingFile(
                f"crm_contacts/{system}/{FILE_STEMS[system]}_{stamp}.csv",
                "crm_contacts",
                crm_header(system),
                self.crm.export(system, day),
            )
            inject_csv(crm_file, dirty["crm_contacts"], dirty_rng(seed, "crm_contacts", day, part), crm_system=system)
            self._write(crm_file)
        notes_file = LandingFile(f"crm_notes/notes_{stamp}.jsonl", "crm_notes", None, note_lines)
        inject_jsonl(notes_file, dirty["crm_notes"], dirty_rng(seed, "crm_notes", day))
        self._write(notes_file)

        self._collect_truth(day, sessions, timeline, orders, sends, spend, note_facts)
        return sends

    def _write_events(
        self, day: int, stamp: str, lines: list[str], sessions: DaySessions, line_session: np.ndarray
    ) -> None:
        rates = self.scenario.dirty["events"]
        delivery = plan_event_delivery(len(lines), rates, dirty_rng(self.seed, "events", day, part=1))
        session_ids = sessions.session_ids
        for k in np.flatnonzero(delivery.late_days).tolist():
            self.carried[day + int(delivery.late_days[k])].append((lines[k], LATE, session_ids[line_session[k]]))
        file = LandingFile(f"events/{stamp}.jsonl", "events", None, [])
        carried = [(line, kind) for line, kind, _ in self.carried.pop(day, [])]
        for line in assemble_events_file(file, lines, delivery, carried):
            self.carried[day + 1].append((line, DUPLICATE, None))
        inject_jsonl(file, rates, dirty_rng(self.seed, "events", day))
        self._write(file)

    # -- truth -----------------------------------------------------------------------------------

    def _collect_truth(
        self,
        day: int,
        sessions: DaySessions,
        timeline: pd.DataFrame,
        orders: pd.DataFrame,
        sends: pd.DataFrame,
        spend: pd.DataFrame,
        note_facts: pd.DataFrame,
    ) -> None:
        population, start = self.population, self.start
        people = population.people
        session_ids = np.asarray(sessions.session_ids, dtype=object)
        last_event = np.cumsum(sessions.n_events) - 1
        end_s = timeline["seconds"].to_numpy()[last_event] if len(sessions) else np.zeros(0)
        order_of_session = np.full(len(sessions), None, dtype=object)
        order_of_session[orders["session_row"].to_numpy()] = orders["order_id"].to_numpy()
        campaign_ids = np.asarray([c.campaign_id for c in self.campaigns] + [None], dtype=object)
        ad_groups = [c.ad_group_ids for c in self.campaigns]
        self.truth["sessions"].append(
            pd.DataFrame(
                {
                    "session_id": session_ids,
                    "day": day,
                    "person_id": people["person_id"].to_numpy()[sessions.person],
                    "anonymous_id": population.devices["anonymous_id"].to_numpy()[sessions.device],
                    "start_at": _timestamps(start, sessions.start_s),
                    "end_at": _timestamps(start, end_s),
                    "channel": np.asarray(CHANNEL_NAMES, dtype=object)[sessions.channel],
                    "campaign_id": campaign_ids[sessions.campaign],
                    "ad_group_id": [
                        ad_groups[c][a] if a >= 0 else None for c, a in zip(sessions.campaign, sessions.ad_group)
                    ],
                    # numpy's stubs take no None as a value; at run time it gives an object array holding None
                    "variant_id": np.where(sessions.variant_id == "", None, sessions.variant_id),  # type: ignore[call-overload]
                    "region": np.asarray(REGIONS, dtype=object)[population.region_idx[sessions.person]],
                    "n_events": sessions.n_events,
                    "n_events_landed": sessions.n_events,
                    "signed_up": sessions.signup,
                    "logged_in": sessions.login,
                    "webinar_registration": sessions.webinar,
                    "demo_request": sessions.demo,
                    "converted": sessions.convert,
                    "order_id": order_of_session,
                }
            )
        )
        self.truth["orders"].append(
            pd.DataFrame(
                {
                    "order_id": orders["order_id"],
                    "person_id": people["person_id"].to_numpy()[orders["person_idx"].to_numpy()],
                    "session_id": session_ids[orders["session_row"].to_numpy()],
                    "channel": orders["channel"],
                    "campaign_id": campaign_ids[sessions.campaign[orders["session_row"].to_numpy()]],
                    "variant_id": [v or None for v in sessions.variant_id[orders["session_row"].to_numpy()]],
                    "region": orders["region"],
                    "user_id": orders["user_id"].replace("", None),
                    "email": orders["email"].replace("", None),
                    "product_id": orders["product_id"],
                    "seats": orders["seats"],
                    "amount": orders["amount"],
                    "currency": orders["currency"],
                    "amount_usd": orders["amount_usd"],
                    "status": orders["status"],
                    "created_at": _timestamps(start, orders["created_s"].to_numpy()),
                }
            )
        )
        click_session = np.full(len(sends), None, dtype=object)
        click_order = np.full(len(sends), None, dtype=object)
        clicked = np.flatnonzero(sessions.email_send_row >= 0)
        click_session[sessions.email_send_row[clicked]] = session_ids[clicked]
        click_order[sessions.email_send_row[clicked]] = order_of_session[clicked]
        self.truth["email_sends"].append(
            pd.DataFrame(
                {
                    "day": sends["day"],
                    "campaign_id": sends["campaign_id"],
                    "variant_id": sends["variant_id"],
                    "is_holdout": sends["is_holdout"],
                    "person_id": people["person_id"].to_numpy()[sends["person_idx"].to_numpy(dtype=np.int64)],
                    "region": sends["region"],
                    "message_id": sends["message_id"].replace("", None),
                    "recipient_email": sends["recipient_email"],
                    **{
                        flag: sends[flag]
                        for flag in ("sent", "bounced", "delivered", "opened", "clicked", "unsubscribed")
                    },
                    "session_id": click_session,
                    "order_id": click_order,
                    "cost_usd": sends["cost"],
                    "sent_at": _timestamps(start, sends["sent_s"].to_numpy()),
                }
            )
        )
        self.truth["ad_spend"].append(spend)
        self.truth["notes_facts"].append(note_facts)
        self.expected.add_day(day, sends)

    def _identity_truth(self, orders: pd.DataFrame) -> pd.DataFrame:
        """Every CRM record, anonymous id, user id and order that exists within the horizon -> person."""
        population, days = self.population, self.config.days
        person_id = population.people["person_id"].to_numpy()
        crm = self.crm.frame[self.crm.frame["export_day"] < days]
        devices = population.devices[self.seen_device]
        signed_up = population.signup_day < days
        return pd.concat(
            [
                pd.DataFrame(
                    {
                        "source": crm["system"],
                        "source_record_id": crm["record_id"],
                        "true_entity_id": person_id[crm["person_idx"].to_numpy()],
                    }
                ),
                pd.DataFrame(
                    {
                        "source": "segment_anonymous_id",
                        "source_record_id": devices["anonymous_id"],
                        "true_entity_id": person_id[devices["person_idx"].to_numpy()],
                    }
                ),
                pd.DataFrame(
                    {
                        "source": "segment_user_id",
                        "source_record_id": population.people["user_id"][signed_up],
                        "true_entity_id": person_id[signed_up],
                    }
                ),
                pd.DataFrame(
                    {"source": "orders", "source_record_id": orders["order_id"], "true_entity_id": orders["person_id"]}
                ),
            ],
            ignore_index=True,
        )

    def write_truth(self) -> list[str]:
        self.report("truth", 0, 1)
        out = TruthWriter(self.truth_dir)
        population, people = self.population, self.population.people
        days = self.config.days
        sessions = _concat(self.truth["sessions"])
        dropped = Counter(
            sid for d, items in self.carried.items() if d >= days for _, kind, sid in items if kind == LATE
        )
        if dropped:
            lost = sessions["session_id"].map(dropped).fillna(0).astype(np.int64)
            sessions["n_events_landed"] = sessions["n_events"] - lost
        orders = _concat(self.truth["orders"])

        out.csv("identity_truth.csv", self._identity_truth(orders))

        signup_day = people["signup_day"]
        out.csv(
            "people.csv",
            people.assign(
                log_engagement=np.log(people["engagement"]),
                signup_date=[day_of(self.start, int(d)).isoformat() if pd.notna(d) else None for d in signup_day],
            ),
        )
        out.csv("accounts.csv", population.accounts)
        out.json("propensity_model.json", propensity_model(self.scenario))
        out.parquet("sessions.parquet", sessions)
        out.parquet("orders.parquet", orders)
        out.parquet("email_sends.parquet", _concat(self.truth["email_sends"]))
        out.parquet("ad_spend.parquet", _concat(self.truth["ad_spend"]))
        out.csv("arm_rates.csv", self.response.arm_rates())
        out.csv("channel_rates.csv", self.response.channel_rates())
        out.json("planted_effects.json", self.response.planted_effects())
        if self.scenario.segment_effects:  # heterogeneous effects: true rates per arm × segment
            out.csv("arm_segment_rates.csv", self.response.arm_segment_rates())
        out.csv("expected_daily.csv", self.expected.frame())
        out.csv("notes_facts.csv", _concat(self.truth["notes_facts"]))
        out.csv("fx_rates.csv", fx_rates())
        out.csv("dirty_rows.csv", pd.DataFrame(self.dirty, columns=["file", "line", "kind"]))
        out.json("manifest.json", manifest(self.config, self.scenario, self.entries))
        self.report("truth", 1, 1)
        return out.written


def _timestamps(start: datetime.date, seconds: np.ndarray) -> pd.Series:
    base = pd.Timestamp(start, tz="UTC")
    return pd.Series(base + pd.to_timedelta(np.round(np.asarray(seconds, dtype=float) * 1000), unit="ms"))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    non_empty = [f for f in frames if len(f)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else frames[0]
