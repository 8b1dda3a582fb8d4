"""Phone numbers of CRM contacts in E.164, parsed with the `phonenumbers` library (libphonenumber).

One row per distinct (phone_raw, country_code) of int_crm_contacts__unioned. The record's country is
the default region for numbers written without a country code; a number written with a `00`
international prefix that does not parse as a national number is tried again as `+…`. Only numbers
that `phonenumbers.is_valid_number` accepts get a phone_e164; placeholders such as 0000000000 or
+1 555 555 5555 are not valid numbers and stay null.
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

    contacts = dbt.ref("int_crm_contacts__unioned")
    phones = contacts.filter("phone is not null").project("phone as phone_raw, country_code").distinct().df()
    e164 = [to_e164(raw, country) for raw, country in zip(phones["phone_raw"], phones["country_code"])]
    return pd.DataFrame({
        "phone_raw": phones["phone_raw"].astype("string"),
        "country_code": phones["country_code"].astype("string"),
        "phone_e164": pd.Series(e164, dtype="string"),
        "is_valid": pd.Series([value is not None for value in e164], dtype="bool"),
    })
