"""Phone numbers of CRM contacts in E.164, parsed with the `phonenumbers` library (libphonenumber).

One row per distinct (phone_raw, country_code) of int_crm_contacts__unioned. The record's country is
the default region for numbers written without a country code; a number written with a `00`
international prefix that does not parse as a national number is tried again as `+…`. Only numbers
that `phonenumbers.is_valid_number` accepts get a phone_e164; placeholders such as 0000000000 or
+1 555 555 5555 are not valid numbers and stay null.

A number the last build parsed with the same version of the library (`parsed_with`) keeps that build's result: a
day's build parses the day's new numbers, not every contact's again (issue 20).
"""


def to_e164(phone_raw, country_code):
    """E.164 form of a written phone number, or None when it is not a valid number."""
    import phonenumbers

    if not phone_raw:
        return None
    region = country_code.upper() if isinstance(country_code, str) and country_code else None
    attempts = [(phone_raw, region)]
    stripped = phone_raw.strip()
    if stripped.startswith("00"):
        attempts.append(("+" + stripped[2:], None))
    for text, default_region in attempts:
        try:
            parsed = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def model(dbt, session):
    dbt.config(materialized="table")
    import pandas as pd
    import phonenumbers

    from mos_pipelines.transform.previous import previous_table

    parsed_with = f"phonenumbers {phonenumbers.__version__}"
    contacts = dbt.ref("int_crm_contacts__unioned")
    phones = contacts.filter("phone is not null").project("phone as phone_raw, country_code").distinct().df()
    countries = [c if isinstance(c, str) else None for c in phones["country_code"]]
    previous = previous_table(
        session, dbt.this.schema, dbt.this.identifier, "parsed_with", f"parsed_with = '{parsed_with}'"
    )
    known = {}
    if previous is not None:
        for raw, country, e164 in zip(previous["phone_raw"], previous["country_code"], previous["phone_e164"]):
            known[(raw, country if isinstance(country, str) else None)] = e164 if isinstance(e164, str) else None
    e164 = [
        known[(raw, country)] if (raw, country) in known else to_e164(raw, country)
        for raw, country in zip(phones["phone_raw"], countries)
    ]
    return pd.DataFrame({
        "phone_raw": phones["phone_raw"].astype("string"),
        "country_code": pd.Series(countries, dtype="string"),
        "phone_e164": pd.Series(e164, dtype="string"),
        "is_valid": pd.Series([value is not None for value in e164], dtype="bool"),
        "parsed_with": pd.Series([parsed_with] * len(phones), dtype="string"),
    })
