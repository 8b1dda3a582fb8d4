"""Word lists for people and companies: names per country, nicknames, company name parts, job titles."""

from __future__ import annotations

import unicodedata

_ANGLO_FIRST = (
    "James", "Robert", "Michael", "William", "David", "Richard", "Thomas", "Christopher", "Daniel",
    "Matthew", "Anthony", "Joseph", "Andrew", "Nicholas", "Jonathan", "Timothy", "Edward", "Benjamin",
    "Alexander", "Charles", "Elizabeth", "Katherine", "Jennifer", "Patricia", "Margaret", "Susan",
    "Jessica", "Rebecca", "Samantha", "Victoria", "Deborah", "Kimberly", "Emily", "Sarah", "Olivia",
    "Zoë", "Chloé", "Noah", "Grace", "Hannah",
)
_ANGLO_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young",
    "O'Brien", "McDonald", "Nguyen", "Kim", "Patel", "García", "Ångström",
)

FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "US": _ANGLO_FIRST + ("José", "María", "Sofía", "Wei", "Priya"),
    "CA": _ANGLO_FIRST + ("Étienne", "Geneviève", "François", "Amélie"),
    "GB": _ANGLO_FIRST + ("Oliver", "Amelia", "Harry", "Isla", "Siobhán"),
    "AU": _ANGLO_FIRST + ("Jack", "Charlotte", "Lachlan", "Matilda"),
    "DE": ("Lukas", "Leon", "Jürgen", "Jörg", "Stefan", "Wolfgang", "Johannes", "Anna", "Lena", "Jülide",
           "Sophie", "Katharina", "Elisabeth", "Günter", "Sören", "Maximilian", "Zoë", "Björn", "Ute", "Felix"),
    "FR": ("Élodie", "François", "Hélène", "Zoë", "Chloé", "Léa", "Camille", "Julien", "Théo", "Nicolas",
           "Mathieu", "Céline", "Amélie", "Jérôme", "Benoît", "Margaux", "Louis", "Manon", "Raphaël", "Inès"),
    "ES": ("José", "María", "Sofía", "Lucía", "Álvaro", "Javier", "Alejandro", "Carmen", "Pablo", "Inés",
           "Andrés", "Nuria", "Íñigo", "Francisco", "Elena", "Martín", "Ramón", "Begoña", "Raúl", "Paula"),
    "NL": ("Daan", "Sanne", "Bram", "Femke", "Lotte", "Sem", "Thijs", "Eva", "Joris", "Anouk", "Ruud",
           "Maarten", "Fleur", "Niels", "Iris", "Stijn", "Noor", "Zoë", "Jeroen", "Marloes"),
    "IT": ("Giuseppe", "Francesca", "Giulia", "Alessandro", "Lorenzo", "Chiara", "Matteo", "Sara", "Niccolò",
           "Federica", "Luca", "Elisa", "Andrea", "Martina", "Davide", "Valentina", "Tommaso", "Ilaria",
           "Stefano", "Beatrice"),
    "SG": ("Wei", "Mei", "Jun", "Hui", "Siew Ling", "Kai", "Rachel", "Daniel", "Priya", "Arjun", "Nur",
           "Farhan", "Jessica", "Benjamin", "Xin Yi"),
    "IN": ("Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Rohan", "Divya",
           "Siddharth", "Pooja", "Aditya", "Neha", "Karthik", "Lakshmi", "Amit", "Shreya"),
    "BR": ("João", "Ana", "Lucas", "Mariana", "Gabriel", "Júlia", "Pedro", "Beatriz", "Rafael", "Letícia",
           "Matheus", "Camila", "Luíza", "Thiago", "Fernanda", "Conceição", "André", "Larissa"),
    "MX": ("José", "Sofía", "Alejandro", "Valentina", "Diego", "Ximena", "Luis", "Fernanda", "Carlos",
           "Regina", "Jorge", "Daniela", "Miguel", "Guadalupe", "Ramón", "Andrea", "Iván", "Renata"),
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "US": _ANGLO_LAST + ("Hernández", "Lopez", "Chen"),
    "CA": _ANGLO_LAST + ("Tremblay", "Gagnon", "Côté", "Bouchard"),
    "GB": _ANGLO_LAST + ("Evans", "Hughes", "Ó Súilleabháin"),
    "AU": _ANGLO_LAST + ("Kelly", "Ryan", "Tran"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
           "Zimmermann", "Krüger", "Ångström", "Strauß"),
    "FR": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
           "Moreau", "Lefèvre", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Chevalier",
           "Rousseau", "Gauthier"),
    "ES": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz",
           "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez", "Navarro",
           "Torres", "Domínguez"),
    "NL": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
           "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
           "van Leeuwen", "Dekker", "Brouwer"),
    "IT": ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
           "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa", "Giordano", "Rizzo",
           "Lombardi", "Moretti"),
    "SG": ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Chan", "Koh", "Teo", "Ang", "Yeo",
           "Kumar", "Abdullah", "Rahman"),
    "IN": ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Rao", "Mehta", "Joshi",
           "Desai", "Chopra", "Banerjee", "Mukherjee", "Menon", "Pillai", "Verma"),
    "BR": ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
           "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo", "Gonçalves", "Conceição", "Magalhães"),
    "MX": ("Hernández", "García", "Martínez", "López", "González", "Rodríguez", "Pérez", "Sánchez",
           "Ramírez", "Cruz", "Flores", "Gómez", "Morales", "Vázquez", "Jiménez", "Reyes", "Díaz", "Núñez"),
}

# Formal first name -> the short form people also go by.
NICKNAMES: dict[str, str] = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Katherine": "Kate", "Michael": "Mike",
    "Jennifer": "Jen", "James": "Jim", "Richard": "Rick", "Thomas": "Tom", "Christopher": "Chris",
    "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Joseph": "Joe", "Patricia": "Pat",
    "Margaret": "Maggie", "Susan": "Sue", "Jessica": "Jess", "Rebecca": "Becky", "Samantha": "Sam",
    "Alexander": "Alex", "Benjamin": "Ben", "Nicholas": "Nick", "Jonathan": "Jon", "Andrew": "Andy",
    "Timothy": "Tim", "Edward": "Ed", "Charles": "Charlie", "Victoria": "Vicky", "Deborah": "Debbie",
    "Kimberly": "Kim", "Giuseppe": "Beppe", "Francisco": "Paco", "José": "Pepe", "Alejandro": "Álex",
    "Johannes": "Hannes", "Katharina": "Kathi", "Maximilian": "Max", "Elisabeth": "Lisa",
    "Guadalupe": "Lupita", "Francesca": "Franci",
}

COMPANY_PREFIXES = (
    "Blue", "North", "Bright", "Apex", "Silver", "Quantum", "Green", "Red", "Iron", "Nova", "Summit",
    "River", "Stone", "Cloud", "Pixel", "Atlas", "Vertex", "Crimson", "Golden", "Lumen", "Harbor",
    "Maple", "Cedar", "Orbit", "Polar", "Solar", "Swift", "True", "Urban", "Wild", "Alpine", "Coral",
    "Delta", "Echo", "Falcon", "Granite", "Horizon", "Ivory", "Jade", "Kite",
)
COMPANY_CORES = (
    "peak", "field", "works", "logic", "point", "bridge", "path", "stack", "wave", "forge", "line",
    "gate", "labs", "data", "soft", "mind", "flow", "nest", "spark", "core",
)
COMPANY_TAILS: dict[str, tuple[str, ...]] = {
    "saas": ("Software", "Cloud", "Analytics"),
    "retail": ("Stores", "Brands", "Goods"),
    "finance": ("Capital", "Financial", "Partners"),
    "healthcare": ("Health", "Medical", "Care"),
    "manufacturing": ("Industries", "Manufacturing", "Components"),
    "education": ("Learning", "Academy", "Education"),
    "media": ("Media", "Studios", "Publishing"),
}

# Job title per persona and seniority (individual_contributor, manager, director, vp, c_level).
JOB_TITLES: dict[str, tuple[str, str, str, str, str]] = {
    "marketer": ("Marketing Specialist", "Marketing Manager", "Director of Marketing", "VP Marketing",
                 "Chief Marketing Officer"),
    "engineer": ("Software Engineer", "Engineering Manager", "Director of Engineering", "VP Engineering",
                 "Chief Technology Officer"),
    "executive": ("Chief of Staff", "General Manager", "Managing Director", "President",
                  "Chief Executive Officer"),
    "operations": ("Operations Analyst", "Operations Manager", "Director of Operations", "VP Operations",
                   "Chief Operating Officer"),
    "sales": ("Account Executive", "Sales Manager", "Director of Sales", "VP Sales",
              "Chief Revenue Officer"),
}

PERSONAL_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com")
PERSONAL_EMAIL_WEIGHTS = (0.6, 0.2, 0.2)

# Placeholder identifiers that CRM users type when they do not know the real value.
JUNK_EMAILS = ("test@test.com", "none@none.com")
JUNK_PHONES = ("0000000000", "+1 555 555 5555")

# Letters that Unicode decomposition does not reduce to ASCII.
_TRANSLITERATION = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L", "đ": "d"})


def ascii_fold(text: str) -> str:
    """José -> Jose, Müller -> Muller, Strauß -> Strauss."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
