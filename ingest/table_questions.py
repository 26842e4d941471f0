"""Table-shaped QA examples whose rows are exactly what ingest writes (issue 24, the ``tables`` arm).

Real-looking tables (sports seasons and results, company figures, product specs, timetables,
conference programmes, staff lists: text, integers, money, percentages, dates, times, scores) are
drawn from templates, written as .xlsx (typed cells: ints, floats, dates) or .csv (comma or
semicolon) files, and read back by ingest's own loader (:func:`ingest.loaders.load_document`), so
a context is the loader's row text ``Header: value, Header: value.`` character for character.
Questions come from templates over the table's real column names ("What was the score of the
game on Feb 7?", "Who coached the team in 2015?"); the answer is one cell, located in its row.

The generator also writes each row itself, the way it expects ingest to (:func:`expected_row`),
and refuses to go on when the loader's text differs: a change to ingest's row format stops the
training data from silently drifting, and ``tests/test_augment.py`` fails on either side.

Two context shapes, as the reader meets tables:

* ``row``: one row, what a spreadsheet or CSV becomes (each row is its own part, so its own chunk);
  the question's distractors in training are the other rows of its table;
* ``block``: consecutive rows (with the title line above them when it is there) joined by line
  breaks, at most :data:`BLOCK_WORDS` words (a 200-token chunk), what a table inside a PDF or DOCX
  page becomes (``Team: ..., Points: 24.`` lines, as on the Super Bowl test table).

Value pools are split ``train`` / ``heldout`` (names, places, teams, products of one never appear in
the other), so a held-out set scores tables the reader has not seen, not memorised rows:

    python -m ingest.table_questions --out runs/augment/tables-train.json.gz --questions 45000 --seed 1
    python -m ingest.table_questions --out benchmarks/data/table_questions_heldout.json --split heldout \\
        --tables 40 --seed 7 --block-share 0

The output is SQuAD-shaped JSON (:func:`rag_qa.qa_data.load_examples` reads it): one article per
table (its ``title`` unique, its ``document`` the loader's whole text), one paragraph per context,
each row's paragraph listed even when no question is about that row.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import random
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.loaders import LoadedDocument, load_document
from rag_qa.config import Settings

SPLITS = ("train", "heldout")
FORMAT = "rag-qa-table-questions-1"
#: a block context holds at most this many words: about one 200-token ingest chunk
BLOCK_WORDS = 150
_SPACE = re.compile(r"\s+")


def _words(text: str) -> list[str]:
    return text.split()


def _shuffled(items: set[str], rng: random.Random) -> list[str]:
    """``items`` in a seeded random order (sorted first: a set's own order changes with the hash seed)."""
    out = sorted(items)
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------- value pools
FIRST = _words("Alice Andrew Amara Ben Bianca Carlos Chloe Daniel Dana Elena Ethan Farah Felix Grace Hannah Hugo Ines "
         "Isaac Jonas Julia Kai Karin Leo Lena Marco Maya Nadia Noah Olga Omar Paula Pierre Quinn Rosa Samuel "
         "Sofia Tariq Tessa Victor Wendy Yusuf Zoe Mei Ravi Aiko Bruno Clara Diego Erik Fatima")
LAST = _words("Abbott Achebe Alvarez Bauer Becker Bennett Brandt Castillo Chen Clarke Costa Dalton Dumont Eriksen "
        "Fischer Fletcher Garcia Gallagher Haas Hartley Hoffman Ivanova Jansen Kapoor Keller Kowalski Larsen "
        "Lindqvist Marsh Moreau Nakamura Novak Okafor Olsen Ortega Park Petrov Quinlan Ramos Reyes Rossi "
        "Sato Schmidt Silva Sorensen Tanaka Thornton Varga Vogel Walsh Weber Whitfield Yilmaz Zhang Ziegler "
        "Brennan Carvalho Delgado Engel Fontaine Grady")
CITIES = _words("Portland Denver Austin Halifax Leeds Lyon Porto Turin Graz Malmo Tampere Cork Aarhus Bilbao Ghent "
          "Utrecht Kraków Brno Tallinn Riga Perth Adelaide Hamilton Calgary Winnipeg Tucson Omaha Boise Dayton "
          "Spokane Quebec Bergen Basel Lille Nantes Seville Bologna Dresden Bremen Antwerp Salzburg Linz Oulu "
          "Uppsala Vilnius Ljubljana Zagreb Split Plovdiv Cluj Kosice Gdansk Poznan Lodz Tartu Reno Fresno")
MASCOTS = _words("Foxes Hawks Otters Comets Pioneers Rangers Falcons Wolves Bison Herons Mariners Stallions Lynx "
           "Cougars Ravens Badgers Coyotes Storm Thunder Vipers Owls Stags Kestrels Bulldogs Titans Rockets Marlins "
           "Sharks Eagles Harriers")
COMPANY_A = _words("Northwind Brightwater Silverline Redstone Bluepeak Ironbridge Greenfield Clearview Westbrook "
             "Oakridge Highgate Stonebridge Lakeshore Riverbend Fairhaven Summit Meridian Horizon Keystone "
             "Copperleaf Harbor Evergreen Granite Solstice Cobalt Pinecrest Ashford Larkspur Beacon Tidewater")
COMPANY_B = _words("Logistics Foods Energy Systems Pharma Analytics Robotics Textiles Media Telecom Motors Outdoor "
             "Software Biotech Freight Materials Health Capital Labs Networks")
COMPANY_C = _words("Inc. Ltd AG plc Group Corp. SA Holdings")
SECTORS = ("Logistics", "Consumer goods", "Energy", "Technology", "Healthcare", "Financials", "Industrials",
           "Materials", "Media", "Telecommunications", "Utilities", "Retail")
BRANDS = _words("Vela Orion Nimbus Kestrel Aurora Lumen Zenith Quasar Nova Helix Atlas Corvus Tundra Solace Prism "
          "Ember Vertex Halo Astra Pulse")
LINES = _words("Pro Air Max Lite Plus Ultra Go Mini Edge Flex")
COLOURS = ("Graphite", "Silver", "Midnight blue", "Sage green", "Coral", "Sand", "Black", "White", "Burgundy",
           "Slate grey")
DEPARTMENTS = ("Finance", "Legal", "Marketing", "Engineering", "Sales", "Human Resources", "Operations",
               "Customer Support", "Research", "Procurement", "IT", "Facilities")
ROLES = ("Head of Finance", "General Counsel", "Marketing Manager", "Software Engineer", "Account Executive",
         "HR Business Partner", "Operations Lead", "Support Specialist", "Research Scientist", "Buyer",
         "Systems Administrator", "Office Manager", "Data Analyst", "Product Owner", "Payroll Officer",
         "Recruiter", "Quality Engineer", "Controller")
TOPICS = ("search", "caching", "streaming data", "privacy", "accessibility", "testing", "observability",
          "type systems", "embedded devices", "energy use", "open data", "compilers", "databases", "security",
          "machine learning", "teaching", "design systems", "robotics", "maps", "payments")
TALKS = ("{T} at scale", "Lessons from ten years of {T}", "A gentle introduction to {T}", "What we got wrong about {T}",
         "{T} in practice", "The future of {T}", "Rethinking {T}", "{T} for beginners", "Ten myths about {T}",
         "Building {T} on a budget")
ROOMS = ("Hall A", "Hall B", "Room 101", "Room 204", "Auditorium", "Studio 3", "Main Stage", "Room 12",
         "Workshop Room", "Lecture Theatre 2")
STAGES = ("Arena", "Stadium", "Field", "Park", "Dome", "Bowl")
PLAYOFFS = ("Did not qualify", "Lost Wild Card Round", "Lost Divisional Round", "Lost Conference Final",
            "Lost Final", "Won Championship")
FINISH = ("1st", "2nd", "3rd", "4th", "5th")
MONTHS = _words("January February March April May June July August September October November December")


def _split(items: list[str] | tuple[str, ...], split: str) -> list[str]:
    """Every fifth item is held out; the rest train (the two never share an item)."""
    return [x for i, x in enumerate(items) if (i % 5 == 0) == (split == "heldout")]


@dataclass
class Pools:
    """The value pools of one split."""

    split: str
    first: list[str] = field(init=False)
    last: list[str] = field(init=False)
    cities: list[str] = field(init=False)
    mascots: list[str] = field(init=False)
    company_a: list[str] = field(init=False)
    brands: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.first, self.last = _split(FIRST, self.split), _split(LAST, self.split)
        self.cities, self.mascots = _split(CITIES, self.split), _split(MASCOTS, self.split)
        self.company_a, self.brands = _split(COMPANY_A, self.split), _split(BRANDS, self.split)

    def person(self, rng: random.Random) -> str:
        return f"{rng.choice(self.first)} {rng.choice(self.last)}"

    def team(self, rng: random.Random) -> str:
        return f"{rng.choice(self.cities)} {rng.choice(self.mascots)}"

    def company(self, rng: random.Random) -> str:
        return f"{rng.choice(self.company_a)} {rng.choice(COMPANY_B)}" + (
            f" {rng.choice(COMPANY_C)}" if rng.random() < 0.5 else "")


# ---------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Value:
    """One cell: what an .xlsx file stores (typed), what a .csv file stores (text), and extra ways a
    question may name it (``say``: "Feb 7" for 2016-02-07)."""

    xlsx: Any
    csv: str
    say: tuple[str, ...] = ()

    def stored(self, kind: str) -> Any:
        return self.xlsx if kind == "xlsx" else self.csv


def expected_cell(value: Any) -> str:
    """The text the generator expects ingest to show for a stored cell: ``3`` for 3.0 (``1e+20`` stays), a date's ISO
    form (without a midnight time), TRUE/FALSE, whitespace collapsed.  Written here on purpose rather
    than imported from :mod:`ingest.formats.tables`: tests/test_augment.py checks the two agree."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(round(value, 12))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return _SPACE.sub(" ", str(value)).strip()


def expected_row(headers: list[str], cells: list[Any]) -> tuple[str, list[int | None]]:
    """``Header: value, Header: value.`` for a row's non-empty cells, as the generator expects ingest
    to write it, and where each cell's text starts in it (None for an empty cell)."""
    text, starts = "", []
    for header, cell in zip(headers, cells, strict=True):
        value = expected_cell(cell)
        if not value:
            starts.append(None)
            continue
        text += (", " if text else "") + f"{header}: "
        starts.append(len(text))
        text += value
    return (text + "." if text else ""), starts


def _money(amount: float, rng: random.Random, unit: str = "") -> Value:
    """A money amount in millions: typed in .xlsx (under a "(USD m)" header), written in .csv."""
    if unit == "m":
        text = f"${amount:,.1f}m" if amount < 1000 else f"${amount / 1000:,.2f} billion"
        return Value(round(amount, 1), text, (text,))
    text = f"${amount:,.0f}" if amount >= 100 else f"${amount:,.2f}"
    return Value(float(round(amount, 2)) if amount < 100 else int(round(amount)), text, (text,))


def _date(day: dt.date, rng: random.Random, style: str) -> Value:
    """A date: a date cell in .xlsx (ingest shows its ISO form); in .csv the table's ``style``."""
    month = MONTHS[day.month - 1]
    text = {"iso": day.isoformat(), "us": f"{month[:3]} {day.day}, {day.year}",
            "eu": f"{day.day:02d}/{day.month:02d}/{day.year}", "long": f"{day.day} {month} {day.year}"}[style]
    return Value(day, text, (f"{month} {day.day}, {day.year}", f"{month[:3]} {day.day}", f"{day.day} {month}"))


def _thousands(n: int, rng: random.Random) -> Value:
    return Value(n, f"{n:,}" if rng.random() < 0.7 else str(n), (f"{n:,}",))


# ---------------------------------------------------------------------------- table templates
@dataclass(frozen=True)
class Column:
    id: str
    headers: tuple[str, ...]  # spellings; one is drawn per table
    optional: bool = False  # may be left out of a table
    sparse: float = 0.0  # share of rows whose cell is left empty


@dataclass(frozen=True)
class Schema:
    """A kind of table: columns, a row maker, and question templates.

    ``rows(rng, pools, ctx, n)`` gives ``n`` rows as {column id: Value}; ``ctx`` holds table-wide
    names (the team, the company) that titles and questions use.  A question template is
    (text with ``{column id}`` / ``{ctx name}`` slots, the answer's column id); it is asked about a
    row only when every column it names has a value unique in the table, so it points at one row.
    """

    name: str
    columns: tuple[Column, ...]
    context: Callable[[random.Random, Pools], dict[str, str]]
    rows: Callable[[random.Random, Pools, dict[str, str], int], list[dict[str, Value]]]
    titles: tuple[str, ...]
    questions: tuple[tuple[str, str], ...]
    size: tuple[int, int] = (4, 12)


def _season_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"team": pools.team(rng)}


def _season_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    first = rng.randint(1988, 2012)
    span = rng.random() < 0.4
    games = rng.choice((16, 17, 82, 38))
    rows, coach, left = [], pools.person(rng), rng.randint(1, 4)
    for k in range(n):
        year = first + k
        if left == 0:
            coach, left = pools.person(rng), rng.randint(1, 5)
        left -= 1
        season = Value(f"{year}–{(year + 1) % 100:02d}", f"{year}–{(year + 1) % 100:02d}",
                       (f"{year}–{(year + 1) % 100:02d}", f"{year}-{(year + 1) % 100:02d}")) if span else \
            Value(year, str(year))
        wins = rng.randint(games // 5, games - games // 6)
        draws = rng.randint(0, games // 6) if games == 38 else 0
        rows.append({"season": season, "coach": Value(coach, coach), "wins": Value(wins, str(wins)),
                     "losses": Value(games - wins - draws, str(games - wins - draws)),
                     "finish": _finish(rng),
                     "playoffs": Value(p := rng.choice(PLAYOFFS), p)})
    return rows


def _finish(rng: random.Random) -> Value:
    text = f"{rng.choice(FINISH)} in {rng.choice(('North', 'South', 'East', 'West', 'Central'))} Division" \
        if rng.random() < 0.6 else rng.choice(FINISH)
    return Value(text, text)


SEASONS = Schema(
    "season_records",
    (Column("season", ("Season", "Year")), Column("coach", ("Head coach", "Coach", "Manager")),
     Column("wins", ("Wins", "W", "Won")), Column("losses", ("Losses", "L", "Lost")),
     Column("finish", ("Finish", "Division finish", "Standing"), optional=True),
     Column("playoffs", ("Playoffs", "Postseason"), optional=True)),
    _season_context, _season_rows,
    ("{team} season by season", "{team}: results by season", "{team} records"),
    (("Who coached the team in {season}?", "coach"), ("Who was the head coach of the {team} in {season}?", "coach"),
     ("Who managed the {team} in the {season} season?", "coach"),
     ("How many games did the {team} win in {season}?", "wins"), ("How many wins did the team have in {season}?",
                                                                   "wins"),
     ("How many games did they lose in {season}?", "losses"), ("How many losses did the {team} have in {season}?",
                                                               "losses"),
     ("Where did the {team} finish in {season}?", "finish"), ("How did the {season} season end?", "playoffs"),
     ("What happened in the playoffs in {season}?", "playoffs"),
     ("In which season did {coach} coach the {team}?", "season"), ("In what year did the team win {wins} games?",
                                                                   "season")),
    (5, 12),
)


def _games_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    city = rng.choice(pools.cities)
    return {"team": f"{city} {rng.choice(pools.mascots)}", "city": city, "year": str(rng.randint(1995, 2024)),
            "stadium": f"{rng.choice(pools.last)} {rng.choice(STAGES)}"}


def _games_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    day = dt.date(int(ctx["year"]), 9, 1) + dt.timedelta(days=rng.randint(0, 14))
    style = rng.choice(("iso", "us", "eu", "long"))
    dash = rng.choice(("–", "-"))
    outcomes = rng.choice((("W", "L"), ("Won", "Lost"), ("Win", "Loss")))
    others = [c for c in pools.cities if c != ctx["city"]]
    cities = rng.sample(others, min(n, len(others)))
    rows = []
    for city in cities:
        home = rng.random() < 0.5
        ours, theirs = rng.randint(0, 42), rng.randint(0, 42)
        while theirs == ours:
            theirs = rng.randint(0, 42)
        won = ours > theirs
        opponent = f"{city} {rng.choice(pools.mascots)}"
        venue = ctx["stadium"] if home else f"{rng.choice(pools.last)} {rng.choice(STAGES)}"
        rows.append({"date": _date(day, rng, style), "opponent": Value(opponent, opponent),
                     "venue": Value(venue, venue), "score": Value(s := f"{ours}{dash}{theirs}", s),
                     "result": Value(r := outcomes[0 if won else 1], r),
                     "attendance": _thousands(rng.randint(8000, 82000), rng),
                     "scorer": Value(p := pools.person(rng), p)})
        day += dt.timedelta(days=7)
    return rows


GAMES = Schema(
    "game_results",
    (Column("date", ("Date", "Game date")), Column("opponent", ("Opponent", "Opponents", "Versus")),
     Column("venue", ("Venue", "Stadium", "Location"), optional=True), Column("score", ("Score", "Final score")),
     Column("result", ("Result", "W/L", "Outcome"), optional=True),
     Column("attendance", ("Attendance", "Crowd"), optional=True, sparse=0.1),
     Column("scorer", ("Top scorer", "Leading scorer", "Player of the game"), optional=True)),
    _games_context, _games_rows,
    ("{team} {year} schedule and results", "{year} {team} games", "{team} results, {year} season"),
    (("What was the score of the game on {date}?", "score"), ("What was the final score against {opponent}?",
                                                              "score"),
     ("Who did the {team} play on {date}?", "opponent"), ("Who were the opponents on {date}?", "opponent"),
     ("When did the {team} play {opponent}?", "date"), ("On what date was the game against {opponent}?",
                                                            "date"),
     ("Where was the game against {opponent} played?", "venue"), ("Where did they play on {date}?", "venue"),
     ("How many people attended the game on {date}?", "attendance"),
     ("What was the attendance against {opponent}?", "attendance"),
     ("Who was the top scorer against {opponent}?", "scorer"), ("Who was the best player on {date}?", "scorer"),
     ("What was the result of the game against {opponent}?", "result")),
    (5, 12),
)


def _companies_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"year": str(rng.randint(2010, 2024))}


def _companies_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    names = set()
    while len(names) < n:
        names.add(pools.company(rng))
    rows = []
    for name in _shuffled(names, rng):
        ticker = "".join(w[0] for w in name.split()[:2]).upper() + rng.choice("ABCDEFGHKLMNPRSTX")
        employees = rng.choice((rng.randint(120, 2000), rng.randint(2000, 90000)))
        revenue = round(rng.uniform(40, 25000), 1)
        rows.append({"company": Value(name, name), "ticker": Value(ticker, ticker),
                     "hq": Value(c := rng.choice(pools.cities), c), "ceo": Value(p := pools.person(rng), p),
                     "founded": Value(y := rng.randint(1890, 2015), str(y)),
                     "employees": _thousands(employees, rng), "revenue": _money(revenue, rng, "m"),
                     "sector": Value(s := rng.choice(SECTORS), s)})
    return rows


COMPANIES = Schema(
    "company_figures",
    (Column("company", ("Company", "Name")), Column("ticker", ("Ticker", "Symbol"), optional=True),
     Column("hq", ("Headquarters", "HQ", "City")), Column("ceo", ("CEO", "Chief executive")),
     Column("founded", ("Founded", "Year founded"), optional=True),
     Column("employees", ("Employees", "Staff", "Headcount")),
     Column("revenue", ("Revenue (USD m)", "Revenue", "Sales (USD m)")),
     Column("sector", ("Sector", "Industry"), optional=True)),
    _companies_context, _companies_rows,
    ("Company figures {year}", "Largest employers in the region, {year}", "Portfolio companies ({year})"),
    (("Who is the CEO of {company}?", "ceo"), ("Who runs {company}?", "ceo"),
     ("Where is {company} headquartered?", "hq"), ("In which city is {company} based?", "hq"),
     ("When was {company} founded?", "founded"), ("In what year was {company} founded?", "founded"),
     ("How many employees does {company} have?", "employees"), ("How many people work at {company}?", "employees"),
     ("What was {company}'s revenue?", "revenue"), ("How much revenue did {company} report?", "revenue"),
     ("What is the ticker symbol of {company}?", "ticker"), ("In which sector is {company}?", "sector"),
     ("Which company does {ceo} lead?", "company"), ("Which company is based in {hq}?", "company"),
     ("Which company was founded in {founded}?", "company")),
    (4, 12),
)


def _quarters_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"company": pools.company(rng)}


def _quarters_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    year, quarter = rng.randint(2012, 2022), rng.randint(1, 4)
    revenue, staff = rng.uniform(80, 4000), rng.randint(300, 40000)
    fiscal = rng.random() < 0.3
    rows = []
    for _ in range(n):
        label = f"FY{year}" if fiscal else f"Q{quarter} {year}"
        revenue *= rng.uniform(0.9, 1.15)
        margin = rng.uniform(-0.05, 0.32)
        staff = int(staff * rng.uniform(0.97, 1.06))
        rows.append({"period": Value(label, label, (f"fiscal {year}",) if fiscal else ()),
                     "revenue": _money(revenue, rng, "m"), "operating": _money(revenue * margin, rng, "m")
                     if margin > 0 else Value(round(revenue * margin, 1), f"-${-revenue * margin:,.1f}m"),
                     "margin": Value(m := f"{margin * 100:.1f}%", m), "staff": _thousands(staff, rng)})
        if fiscal:
            year += 1
        else:
            quarter, year = (1, year + 1) if quarter == 4 else (quarter + 1, year)
    return rows


QUARTERS = Schema(
    "quarterly_results",
    (Column("period", ("Quarter", "Period")), Column("revenue", ("Revenue (USD m)", "Revenue", "Net sales")),
     Column("operating", ("Operating income", "EBIT", "Operating profit"), optional=True),
     Column("margin", ("Operating margin", "Margin")), Column("staff", ("Employees", "Headcount"), optional=True)),
    _quarters_context, _quarters_rows,
    ("{company}: key figures", "{company} results by period", "Financial highlights, {company}"),
    (("What was the revenue in {period}?", "revenue"), ("How much revenue did {company} make in {period}?",
                                                         "revenue"),
     ("What was the operating income in {period}?", "operating"),
     ("What was the operating margin in {period}?", "margin"), ("What margin did {company} report for {period}?",
                                                                "margin"),
     ("How many employees did {company} have in {period}?", "staff"),
     ("In which period was the margin {margin}?", "period")),
    (4, 10),
)


def _products_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"brand": rng.choice(pools.brands), "kind": rng.choice(("laptop", "phone", "tablet", "e-bike",
                                                                   "headphones"))}


def _products_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    kind, brand = ctx["kind"], ctx["brand"]
    models = set()
    while len(models) < n:
        models.add(f"{brand} {rng.choice(LINES)} {rng.randint(2, 16)}" if rng.random() < 0.6
                   else f"{brand} {rng.choice('XSGR')}{rng.randint(1, 90)}")
    base = {"laptop": (600, 1.1, "kg"), "phone": (300, 160, "g"), "tablet": (350, 450, "g"),
            "e-bike": (1600, 21, "kg"), "headphones": (90, 250, "g")}[kind]
    style = rng.choice(("iso", "us", "long"))
    rows = []
    for model in _shuffled(models, rng):
        price = base[0] * rng.uniform(0.7, 2.8)
        weight = base[1] * rng.uniform(0.8, 1.3)
        w = f"{weight:.2f} {base[2]}" if base[2] == "kg" else f"{weight:.0f} {base[2]}"
        screen = {"laptop": f'{rng.choice((13.3, 14, 15.6, 16))}"', "phone": f"{rng.choice((5.8, 6.1, 6.7))} in",
                  "tablet": f"{rng.choice((8.3, 10.9, 11, 12.9))} in"}.get(kind)
        released = dt.date(rng.randint(2016, 2025), rng.randint(1, 12), rng.randint(1, 28))
        row = {"model": Value(model, model), "price": _money(round(price, -1) - 0.01 if rng.random() < 0.4
                                                             else round(price, -1), rng),
               "weight": Value(w, w), "battery": Value(b := f"{rng.randint(5, 30)} hours" if kind != "e-bike"
                                                      else f"{rng.randint(40, 150)} km", b),
               "released": _date(released, rng, style), "colour": Value(c := rng.choice(COLOURS), c)}
        if screen:
            row["screen"] = Value(screen, screen)
        if kind in ("laptop", "phone", "tablet"):
            row["storage"] = Value(g := f"{rng.choice((64, 128, 256, 512, 1024))} GB", g)
        rows.append(row)
    return rows


PRODUCTS = Schema(
    "product_specs",
    (Column("model", ("Model", "Product")), Column("price", ("Price", "Price (USD)", "RRP")),
     Column("weight", ("Weight",)), Column("battery", ("Battery life", "Battery", "Range")),
     Column("screen", ("Screen", "Display"), optional=True), Column("storage", ("Storage",), optional=True),
     Column("released", ("Release date", "Released", "Launch date"), optional=True),
     Column("colour", ("Colour", "Color", "Finish"), optional=True)),
    _products_context, _products_rows,
    ("{brand} {kind} line-up", "{brand} {kind}s compared", "Specifications: {brand} {kind}s"),
    (("How much does the {model} cost?", "price"), ("What is the price of the {model}?", "price"),
     ("How much does the {model} weigh?", "weight"), ("What is the battery life of the {model}?", "battery"),
     ("How big is the screen of the {model}?", "screen"), ("How much storage does the {model} have?", "storage"),
     ("When was the {model} released?", "released"), ("What colour is the {model}?", "colour"),
     ("Which model weighs {weight}?", "model"), ("Which {brand} {kind} costs {price}?", "model")),
    (3, 10),
)


def _trains_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"station": rng.choice(pools.cities)}


def _trains_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    minute = rng.randint(5 * 60, 9 * 60)
    numbers = rng.sample(range(100, 9999), n)
    typed_times = rng.random() < 0.3
    rows = []
    for number in numbers:
        minute += rng.randint(8, 70)
        length = rng.randint(25, 260)
        dep, arr = dt.time(minute // 60 % 24, minute % 60), dt.time((minute + length) // 60 % 24,
                                                                    (minute + length) % 60)
        train = f"{rng.choice(('IC', 'RE', 'EC', 'ICE', 'RB', 'S'))} {number}"
        to = rng.choice([c for c in pools.cities if c != ctx["station"]])
        rows.append({"train": Value(train, train, (train, str(number))),
                     "origin": Value(ctx["station"], ctx["station"]), "to": Value(to, to),
                     "dep": Value(dep if typed_times else dep.strftime("%H:%M"), dep.strftime("%H:%M"),
                                  (dep.strftime("%H:%M"),)),
                     "arr": Value(arr if typed_times else arr.strftime("%H:%M"), arr.strftime("%H:%M"),
                                  (arr.strftime("%H:%M"),)),
                     "platform": Value(p := rng.randint(1, 14), str(p)) if rng.random() < 0.8
                     else Value(q := f"{rng.randint(1, 9)}{rng.choice('AB')}", q),
                     "duration": Value(d := f"{length // 60} h {length % 60:02d} min", d)})
    return rows


TRAINS = Schema(
    "train_timetable",
    (Column("train", ("Train", "Service", "Train no.")), Column("origin", ("From", "Origin"), optional=True),
     Column("to", ("To", "Destination")), Column("dep", ("Departure", "Departs")),
     Column("arr", ("Arrival", "Arrives")), Column("platform", ("Platform", "Track")),
     Column("duration", ("Duration", "Journey time"), optional=True)),
    _trains_context, _trains_rows,
    ("Departures from {station}", "{station}: timetable", "Trains leaving {station}"),
    (("When does train {train} depart?", "dep"), ("What time does the {train} leave {station}?", "dep"),
     ("When does train {train} arrive in {to}?", "arr"), ("Which platform does train {train} leave from?",
                                                          "platform"),
     ("Where does train {train} go?", "to"), ("What is the destination of the {dep} train?", "to"),
     ("How long does the journey on train {train} take?", "duration"), ("Which train leaves at {dep}?", "train"),
     ("From which platform does the {dep} to {to} leave?", "platform")),
    (4, 12),
)


def _talks_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"event": f"{rng.choice(pools.cities)} {rng.choice(('DevDays', 'Data Summit', 'Open Source Week', 'Tech Forum', 'Design Conference'))} {rng.randint(2015, 2026)}"}  # noqa: E501


def _talks_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    first = dt.date(int(ctx["event"][-4:]), rng.randint(3, 11), rng.randint(1, 25))
    titles = set()
    while len(titles) < n:
        titles.add(rng.choice(TALKS).replace("{T}", rng.choice(TOPICS)))
    titles_list = _shuffled(titles, rng)
    speakers = set()
    while len(speakers) < n:
        speakers.add(pools.person(rng))
    rows, minute, day = [], 9 * 60, first
    for title, speaker in zip(titles_list, _shuffled(speakers, rng), strict=True):
        if minute > 16 * 60:
            minute, day = 9 * 60, day + dt.timedelta(days=1)
        length = rng.choice((30, 45, 60))
        start, end = (f"{m // 60:02d}:{m % 60:02d}" for m in (minute, minute + length))
        said = (day.strftime("%A"), f"{MONTHS[day.month - 1]} {day.day}")
        rows.append({"day": Value(day, day.strftime("%a %d %b"), said),
                     "start": Value(start, start), "end": Value(end, end),
                     "session": Value(title[0].upper() + title[1:], title[0].upper() + title[1:]),
                     "speaker": Value(speaker, speaker), "room": Value(r := rng.choice(ROOMS), r)})
        minute += length + rng.choice((0, 15, 15, 30))
    return rows


TALKS_SCHEMA = Schema(
    "conference_programme",
    (Column("day", ("Day", "Date"), optional=True), Column("start", ("Start", "Time")),
     Column("end", ("End", "Ends"), optional=True), Column("session", ("Session", "Talk", "Title")),
     Column("speaker", ("Speaker", "Presenter")), Column("room", ("Room", "Location", "Hall"))),
    _talks_context, _talks_rows,
    ("{event} programme", "Programme: {event}", "{event}: sessions"),
    (('Who is presenting "{session}"?', "speaker"), ("Who gives the talk {session}?", "speaker"),
     ('In which room is "{session}"?', "room"), ("Where is the session {session}?", "room"),
     ('What time does "{session}" start?', "start"), ("When does {session} end?", "end"),
     ('On which day is "{session}"?', "day"), ("What is the title of {speaker}'s talk?", "session"),
     ("What is {speaker} talking about?", "session"), ("When does {speaker} speak?", "start")),
    (4, 12),
)


def _staff_context(rng: random.Random, pools: Pools) -> dict[str, str]:
    return {"company": pools.company(rng)}


def _staff_rows(rng: random.Random, pools: Pools, ctx: dict[str, str], n: int) -> list[dict[str, Value]]:
    names = set()
    while len(names) < n:
        names.add(pools.person(rng))
    exts = rng.sample(range(2000, 7999), n)
    style = rng.choice(("iso", "eu", "long"))
    rows = []
    for name, ext in zip(_shuffled(names, rng), exts, strict=True):
        joined = dt.date(rng.randint(1998, 2024), rng.randint(1, 12), rng.randint(1, 28))
        rows.append({"name": Value(name, name), "dept": Value(d := rng.choice(DEPARTMENTS), d),
                     "role": Value(r := rng.choice(ROLES), r), "ext": Value(ext, str(ext)),
                     "office": Value(o := f"{rng.choice('ABCD')}{rng.randint(1, 5)}.{rng.randint(1, 40):02d}", o),
                     "joined": _date(joined, rng, style)})
    return rows


STAFF = Schema(
    "staff_directory",
    (Column("name", ("Name", "Employee")), Column("dept", ("Department", "Team")),
     Column("role", ("Title", "Role", "Position")), Column("ext", ("Extension", "Phone ext.", "Ext.")),
     Column("office", ("Office", "Room"), optional=True), Column("joined", ("Start date", "Joined"), optional=True)),
    _staff_context, _staff_rows,
    ("{company} staff directory", "Contacts: {company}", "{company}: who is who"),
    (("Which department does {name} work in?", "dept"), ("What is {name}'s job title?", "role"),
     ("What is {name}'s phone extension?", "ext"), ("Where is {name}'s office?", "office"),
     ("When did {name} join?", "joined"), ("Who is the {role}?", "name"), ("Who has extension {ext}?", "name"),
     ("What is the extension of the {role}?", "ext")),
    (4, 14),
)

SCHEMAS = (SEASONS, GAMES, COMPANIES, QUARTERS, PRODUCTS, TRAINS, TALKS_SCHEMA, STAFF)
_SLOT = re.compile(r"\{(\w+)\}")


# ---------------------------------------------------------------------------- one table
@dataclass
class Table:
    """A drawn table: what goes in the file, and what the generator expects ingest to read back."""

    name: str  # file stem and article title, unique
    kind: str  # xlsx or csv
    schema: Schema
    ctx: dict[str, str]
    title: str | None
    columns: list[Column]
    headers: list[str]
    rows: list[dict[str, Value]]
    blank: set[tuple[int, str]]  # (row, column id) cells left empty
    delimiter: str = ","

    def cells(self, r: int) -> list[Any]:
        return [None if (r, c.id) in self.blank else self.rows[r][c.id].stored(self.kind) for c in self.columns]

    def text(self, r: int, column: str) -> str:
        """What ingest shows for row ``r``'s cell in ``column`` ("" when empty or absent)."""
        if (r, column) in self.blank or column not in self.rows[r]:
            return ""
        return expected_cell(self.rows[r][column].stored(self.kind))

    def expected_rows(self) -> list[str]:
        return [expected_row(self.headers, self.cells(r))[0] for r in range(len(self.rows))]


def draw_table(rng: random.Random, pools: Pools, name: str, schema: Schema | None = None,
               kind: str | None = None) -> Table:
    """One table of a random (or the given) schema and file kind."""
    schema = schema or rng.choice(SCHEMAS)
    ctx = schema.context(rng, pools)
    n = rng.randint(*schema.size)
    rows = schema.rows(rng, pools, ctx, n)
    columns = [c for c in schema.columns if all(c.id in r for r in rows) and (not c.optional or rng.random() < 0.75)]
    headers = [rng.choice(c.headers) for c in columns]
    blank = {(r, c.id) for r in range(n) for c in columns[1:] if c.sparse and rng.random() < c.sparse}
    title = rng.choice(schema.titles).format(**ctx) if rng.random() < 0.5 else None
    kind = kind or rng.choice(("xlsx", "csv"))
    # semicolons only without a title line: ingest's dialect sniffer cannot read a semicolon file whose
    # first line has no delimiter and falls back to commas (the whole row lands in one cell)
    semicolon = kind == "csv" and not title and rng.random() < 0.3
    return Table(name, kind, schema, ctx, title, columns, headers, rows, blank, delimiter=";" if semicolon else ",")


def write_table(table: Table, folder: Path) -> Path:
    """The table as ``folder/<name>.xlsx`` (typed cells, one sheet) or ``.csv``; a title goes in a
    single cell above the header, as people put one."""
    path = folder / f"{table.name}.{table.kind}"
    lines: list[list[Any]] = ([[table.title]] if table.title else []) + [list(table.headers)]
    lines += [table.cells(r) for r in range(len(table.rows))]
    if table.kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = table.schema.name.replace("_", " ").capitalize()[:31]
        for line in lines:
            sheet.append(line)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
        book.save(str(path))
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh, delimiter=table.delimiter).writerows(
                [["" if c is None else c for c in line] for line in lines])
    return path


class RowMismatch(RuntimeError):
    """Ingest read a generated table differently from how the generator wrote it."""


def read_back(table: Table, path: Path, settings: Settings) -> LoadedDocument:
    """``path`` through ingest's loader; :class:`RowMismatch` unless its parts are the title line and
    exactly the rows :meth:`Table.expected_rows` says."""
    doc = load_document(path, settings)
    got = [text for _, text in doc.segments()]
    want = ([table.title] if table.title else []) + table.expected_rows()
    if got != want:
        diff = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), min(len(got), len(want)))
        raise RowMismatch(f"{path.name}: ingest read part {diff} as {got[diff:diff + 1]!r}, the generator wrote "
                          f"{want[diff:diff + 1]!r} ({len(got)} parts read, {len(want)} written)")
    return doc


# ---------------------------------------------------------------------------- questions
def _unique(table: Table, column: str) -> bool:
    values = [table.text(r, column) for r in range(len(table.rows))]
    return all(values) and len(set(values)) == len(values)


def row_questions(table: Table, r: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, answer column id, answer text) for row ``r``: every template whose answer cell is
    filled and whose named columns single this row out, each slot filled with the cell's text as
    ingest shows it or another way people say it."""
    present = {c.id for c in table.columns}
    out = []
    for template, answer in table.schema.questions:
        slots = _SLOT.findall(template)
        cols = [s for s in slots if s not in table.ctx]
        if answer not in present or not table.text(r, answer) or answer in cols:
            continue
        if any(s not in present or not _unique(table, s) for s in cols):
            continue
        fill = dict(table.ctx)
        for s in cols:
            shown = table.text(r, s)
            fill[s] = rng.choice((shown, shown, *table.rows[r][s].say)) if table.rows[r][s].say else shown
        out.append((template.format(**fill), answer, table.text(r, answer)))
    # the real column name asked about directly, as people also do ("What is the Crowd for the game on ...")
    key = table.columns[0].id
    if _unique(table, key):
        for c, h in zip(table.columns[1:], table.headers[1:], strict=True):
            if table.text(r, c.id) and rng.random() < 0.3:
                out.append((f"What is the {h} for {table.text(r, key)}?", c.id, table.text(r, c.id)))
    return out


def table_article(table: Table, doc: LoadedDocument, rng: random.Random, ids: str, questions_per_row: float,
                  block_share: float) -> dict[str, Any]:
    """The SQuAD-shaped article of one read-back table: a paragraph per row (the loader's part text),
    block paragraphs for the questions asked over several rows, ~``questions_per_row`` questions a row."""
    parts = [(p, doc.text[p.start:p.end]) for p in doc.parts or []]
    first_row = 1 if table.title else 0
    rows = parts[first_row:]
    paragraphs: list[dict[str, Any]] = [{"context": text, "shape": "row", "row": p.page, "qas": []}
                                        for p, text in rows]
    blocks: dict[tuple[int, int], dict[str, Any]] = {}
    n = 0
    for r in range(len(table.rows)):
        asked = row_questions(table, r, rng)
        rng.shuffle(asked)
        take = int(questions_per_row) + (rng.random() < questions_per_row % 1)
        starts = expected_row(table.headers, table.cells(r))[1]
        column_at = {c.id: i for i, c in enumerate(table.columns)}
        for question, answer, text in asked[:max(1, take)]:
            in_row = starts[column_at[answer]]
            assert in_row is not None and rows[r][1][in_row:in_row + len(text)] == text
            target, offset = paragraphs[r], in_row
            if rng.random() < block_share:
                lo, hi = _block(rows, r, rng)
                start = rows[lo][0].start if lo > 0 or not table.title else parts[0][0].start
                if (lo, hi) not in blocks:
                    blocks[(lo, hi)] = {"context": doc.text[start:rows[hi][0].end], "shape": "block",
                                        "row": rows[lo][0].page, "qas": []}
                target, offset = blocks[(lo, hi)], rows[r][0].start - start + in_row
            assert target["context"][offset:offset + len(text)] == text
            target["qas"].append({"id": f"{ids}-{n:03d}", "question": question,
                                  "answers": [{"text": text, "answer_start": offset}], "column": answer})
            n += 1
    return {"title": table.name, "source": f"{table.name}.{table.kind}", "schema": table.schema.name,
            "headers": table.headers, "document": doc.text, "paragraphs": paragraphs + list(blocks.values())}


def _block(rows: list[tuple[Any, str]], r: int, rng: random.Random) -> tuple[int, int]:
    """Consecutive rows around row ``r`` (2 or more when there are) within :data:`BLOCK_WORDS` words."""
    lo = hi = r
    want = rng.randint(2, 8)
    words = len(rows[r][1].split())
    while hi - lo + 1 < want:
        grown = False
        for j in ((hi + 1, lo - 1) if rng.random() < 0.5 else (lo - 1, hi + 1)):
            if 0 <= j < len(rows) and words + len(rows[j][1].split()) <= BLOCK_WORDS:
                words += len(rows[j][1].split())
                lo, hi, grown = min(lo, j), max(hi, j), True
                break
        if not grown:
            break
    return lo, hi


# ---------------------------------------------------------------------------- a whole set
def generate(tables: int | None = None, questions: int | None = None, seed: int = 0, split: str = "train",
             block_share: float = 0.5, questions_per_row: float = 2.0, keep_files: Path | None = None,
             settings: Settings | None = None) -> dict[str, Any]:
    """A SQuAD-shaped set of table questions: ``tables`` tables, or as many as ``questions`` need.

    Each table is written to a file, read back by ingest's loader and checked (:func:`read_back`);
    the files go to ``keep_files`` when given, else to a temporary folder that is removed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    if (tables is None) == (questions is None):
        raise ValueError("give either tables or questions")
    settings = settings or Settings()
    rng, pools = random.Random(f"{seed}/{split}"), Pools(split)
    articles: list[dict[str, Any]] = []
    count = 0
    with tempfile.TemporaryDirectory(prefix="table-questions-") as tmp:
        folder = keep_files or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        while (tables is not None and len(articles) < tables) or (questions is not None and count < questions):
            name = f"{split}_{seed}_{len(articles):05d}"
            table = draw_table(rng, pools, name)
            table.name = f"{table.schema.name}_{name}"
            doc = read_back(table, write_table(table, folder), settings)
            article = table_article(table, doc, rng, f"tq-{split}-{seed}-{len(articles):05d}", questions_per_row,
                                    block_share)
            articles.append(article)
            count += sum(len(p["qas"]) for p in article["paragraphs"])
    return {"version": FORMAT, "split": split, "seed": seed, "block_share": block_share, "questions": count,
            "data": articles}


def save(data: dict[str, Any], path: Path) -> None:
    """``data`` as JSON (gzipped when ``path`` ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=None if path.name.endswith(".gz") else 1)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ingest.table_questions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output .json or .json.gz (SQuAD-shaped)")
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--tables", type=int, help="how many tables")
    size.add_argument("--questions", type=int, help="as many tables as this many questions need")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=SPLITS, default="train", help="value pools (held-out names never train)")
    ap.add_argument("--block-share", type=float, default=0.5,
                    help="share of questions asked over several rows (a PDF/DOCX table's chunk) instead of one row")
    ap.add_argument("--questions-per-row", type=float, default=2.0)
    ap.add_argument("--keep-files", type=Path, default=None, help="keep the generated .xlsx/.csv files here")
    args = ap.parse_args(argv)
    try:
        data = generate(args.tables, args.questions, args.seed, args.split, args.block_share, args.questions_per_row,
                        args.keep_files)
    except RowMismatch as err:
        print(f"error: ingest no longer reads tables the way this generator writes them: {err}", file=sys.stderr)
        return 1
    save(data, args.out)
    print(f"{args.out}: {len(data['data']):,} tables, {data['questions']:,} questions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
