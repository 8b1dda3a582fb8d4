"""Countries of the simulated world: region, currency, locale, cities, postcodes and how people write them."""

from __future__ import annotations

from dataclasses import dataclass

REGIONS: tuple[str, ...] = ("NA", "EU", "UK", "APAC", "LATAM")


@dataclass(frozen=True)
class Country:
    """One country and the local details the generator needs."""

    code: str  # ISO 3166-1 alpha-2, as Salesforce writes it
    name: str  # English name, as HubSpot writes it
    region: str
    weight: float  # share of the region's accounts
    currency: str
    locale: str
    tld: str
    legal_suffixes: tuple[str, ...]
    cities: tuple[tuple[str, tuple[str, ...]], ...]  # (city, postcodes)
    free_text: tuple[str, ...]  # how people type the country into a webinar form


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        "United States",
        "NA",
        0.85,
        "USD",
        "en-US",
        "com",
        ("Inc.", "LLC", "Corp."),
        (
            ("New York", ("10001", "10011", "10016")),
            ("San Francisco", ("94103", "94107", "94110")),
            ("Austin", ("78701", "78704")),
            ("Chicago", ("60601", "60607")),
        ),
        ("United States", "USA", "U.S.", "us", "united states of america"),
    ),
    Country(
        "CA",
        "Canada",
        "NA",
        0.15,
        "CAD",
        "en-CA",
        "ca",
        ("Inc.", "Ltd."),
        (
            ("Toronto", ("M5V 2T6", "M5H 2N2")),
            ("Vancouver", ("V6B 1A1", "V6C 3E8")),
            ("Montréal", ("H2Y 1C6", "H3B 4W8")),
        ),
        ("Canada", "canada", "CA"),
    ),
    Country(
        "DE",
        "Germany",
        "EU",
        0.30,
        "EUR",
        "de-DE",
        "de",
        ("GmbH", "AG"),
        (
            ("Berlin", ("10115", "10178", "10969")),
            ("München", ("80331", "80469")),
            ("Hamburg", ("20095", "20457")),
            ("Köln", ("50667", "50672")),
        ),
        ("Germany", "germany", "Deutschland", "DE"),
    ),
    Country(
        "FR",
        "France",
        "EU",
        0.25,
        "EUR",
        "fr-FR",
        "fr",
        ("SAS", "SA"),
        (("Paris", ("75002", "75008", "75011")), ("Lyon", ("69002", "69003")), ("Toulouse", ("31000",))),
        ("France", "france", "FR"),
    ),
    Country(
        "ES",
        "Spain",
        "EU",
        0.15,
        "EUR",
        "es-ES",
        "es",
        ("S.L.", "S.A."),
        (("Madrid", ("28001", "28013", "28046")), ("Barcelona", ("08001", "08018")), ("Valencia", ("46001",))),
        ("Spain", "spain", "España", "ES"),
    ),
    Country(
        "NL",
        "Netherlands",
        "EU",
        0.15,
        "EUR",
        "nl-NL",
        "nl",
        ("B.V.", "N.V."),
        (("Amsterdam", ("1012 AB", "1017 CE")), ("Rotterdam", ("3011 AD",)), ("Utrecht", ("3511 AX",))),
        ("Netherlands", "the netherlands", "Holland", "NL"),
    ),
    Country(
        "IT",
        "Italy",
        "EU",
        0.15,
        "EUR",
        "it-IT",
        "it",
        ("S.r.l.", "S.p.A."),
        (("Milano", ("20121", "20124")), ("Roma", ("00184", "00186")), ("Torino", ("10121",))),
        ("Italy", "italy", "Italia", "IT"),
    ),
    Country(
        "GB",
        "United Kingdom",
        "UK",
        1.00,
        "GBP",
        "en-GB",
        "co.uk",
        ("Ltd", "PLC"),
        (
            ("London", ("EC1A 1BB", "SW1A 2AA", "E1 6AN")),
            ("Manchester", ("M1 1AE", "M3 3EB")),
            ("Edinburgh", ("EH1 1YZ",)),
            ("Bristol", ("BS1 4DJ",)),
        ),
        ("United Kingdom", "UK", "U.K.", "England", "great britain"),
    ),
    Country(
        "AU",
        "Australia",
        "APAC",
        0.40,
        "AUD",
        "en-AU",
        "com.au",
        ("Pty Ltd",),
        (("Sydney", ("2000", "2010")), ("Melbourne", ("3000", "3004")), ("Brisbane", ("4000",))),
        ("Australia", "australia", "AU"),
    ),
    Country(
        "SG",
        "Singapore",
        "APAC",
        0.20,
        "SGD",
        "en-SG",
        "sg",
        ("Pte. Ltd.",),
        (("Singapore", ("018956", "048583", "238859")),),
        ("Singapore", "singapore", "SG"),
    ),
    Country(
        "IN",
        "India",
        "APAC",
        0.40,
        "INR",
        "en-IN",
        "in",
        ("Pvt. Ltd.",),
        (("Bengaluru", ("560001", "560034")), ("Mumbai", ("400001", "400051")), ("Pune", ("411001",))),
        ("India", "india", "IN", "Bharat"),
    ),
    Country(
        "BR",
        "Brazil",
        "LATAM",
        0.60,
        "BRL",
        "pt-BR",
        "com.br",
        ("Ltda.", "S.A."),
        (
            ("São Paulo", ("01310-100", "04538-132")),
            ("Rio de Janeiro", ("20040-002", "22250-040")),
            ("Belo Horizonte", ("30130-010",)),
        ),
        ("Brazil", "brazil", "Brasil", "BR"),
    ),
    Country(
        "MX",
        "Mexico",
        "LATAM",
        0.40,
        "MXN",
        "es-MX",
        "com.mx",
        ("S.A. de C.V.",),
        (("Ciudad de México", ("06600", "11560")), ("Guadalajara", ("44100",)), ("Monterrey", ("64000",))),
        ("Mexico", "mexico", "México", "MX"),
    ),
)

COUNTRY_INDEX: dict[str, int] = {c.code: i for i, c in enumerate(COUNTRIES)}

# US dollars per unit of each currency: fixed, so revenue and spend can be compared in USD.
FX_USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0,
    "CAD": 0.73,
    "EUR": 1.08,
    "GBP": 1.27,
    "AUD": 0.66,
    "SGD": 0.74,
    "INR": 0.012,
    "BRL": 0.20,
    "MXN": 0.058,
}

# Ad platform accounts bill in one currency per region.
AD_ACCOUNT_CURRENCY: dict[str, str] = {"NA": "USD", "EU": "EUR", "UK": "GBP", "APAC": "USD", "LATAM": "USD"}


def countries_in(region: str) -> list[Country]:
    return [c for c in COUNTRIES if c.region == region]
