"""A contacts export as CRMs write them (HubSpot, Intercom, Salesforce): a byte order mark,
CRLF line ends, the CRM's own headers (`User ID`, `Email Address`, `Full Name`, ...), columns
HAL has no field for, quoted commas, multi-line notes, unicode, and some invalid emails.

The rows are a function of their number, so a test knows what each one should do
(`ExportShape`); `write_export(path, 51_051)` makes a file the size of the real one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

# The CRM's headers, in its order; the comment says what HAL makes of each.
HEADERS = [
    "User ID",  # user_id (alias)
    "Email Address",  # email (alias)
    "Full Name",  # name (alias)
    "Phone Number",  # not a HAL field: metadata.phone_number with --keep-unknown-columns
    "Company ID",  # company_id (alias)
    "Company Name",  # company_name (alias)
    "Lifecycle Stage",  # stage (alias): the company's stage
    "City",
    "Country",
    "Plan",
    "Tags",
    "Signup Date",
    "Notes",
]
# The same columns as HAL names them (a file a script renamed).
CANONICAL = [
    "user_id", "email", "name", "metadata.phone_number", "company_id", "company_name", "stage",
    "metadata.city", "metadata.country", "metadata.plan", "metadata.tags",
    "metadata.signup_date", "metadata.notes",
]  # fmt: skip
STAGES = ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Opportunity", "Customer"]

_FIRST = ["Zoë", "José", "Łukasz", "Ann", "Björn", "Chloé", "Dmitri", "Émilie", "Fatima", "Søren",
          "Jürgen", "Aoife", "Nguyễn", "芳", "Ольга", "O'Brien", "María José", "Kwame"]  # fmt: skip
_LAST = ["Müller", "García", "Kowalski", "Smith, Jr.", "Dubois", "Østergaard", "Wang", "Şahin",
         "Ivanova", "D'Angelo", "van der Berg", "Nakamura"]  # fmt: skip
_CITIES = [("São Paulo", "Brazil"), ("Zürich", "Switzerland"), ("Kraków", "Poland"),
           ("東京", "Japan"), ("Montréal", "Canada"), ("Reykjavík", "Iceland"),
           ("Washington, D.C.", "United States"), ("Malmö", "Sweden")]  # fmt: skip
_COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
                  "Tyrell", "Cyberdyne", "Soylent", "Aperture"]  # fmt: skip
_SUFFIXES = [", Inc.", " GmbH", " S.A.", ", LLC", " AB", " 株式会社", " & Sons", " 🚀"]
_INVALID_EMAILS = ["n/a", "jane@@example.com", "john.doe@", "name at example.com",
                   "no-reply@example", "@example.com", "a b@example.com"]  # fmt: skip
_NOTES = [
    'Called on Monday.\r\nInterested in the "Pro" plan, wants a demo.\r\nFollow up: Q3',
    "Met at the conference, booth 12\nAsked about SSO, SCIM\nBudget: 10k-20k €",
    "Línea 1\r\nLínea 2, con coma\r\n\r\nLínea 4 después de una vacía",
]


@dataclass(frozen=True)
class ExportShape:
    """What a generated export holds, for a test's expectations."""

    rows: int
    companies: int

    def invalid_email(self, i: int) -> bool:
        return i % 97 == 13

    def has_user_id(self, i: int) -> bool:
        return i % 10 != 7

    def company(self, i: int) -> int | None:
        return None if i % 7 == 0 else (i * 7919) % self.companies

    def multi_line(self, i: int) -> bool:
        return i % 5 == 2

    @property
    def failed(self) -> int:
        return sum(1 for i in range(self.rows) if self.invalid_email(i))

    @property
    def created(self) -> int:
        return self.rows - self.failed

    @property
    def failed_lines(self) -> list[int]:
        """The line each failed row starts on (the header is line 1)."""
        lines, line = [], 2
        for i in range(self.rows):
            if self.invalid_email(i):
                lines.append(line)
            line += 1 + (self.multi_line(i) * _NOTES[i % len(_NOTES)].count("\n"))
        return lines


def company_name(index: int) -> str:
    word = _COMPANY_WORDS[index % len(_COMPANY_WORDS)]
    return f"{word} {index}{_SUFFIXES[index % len(_SUFFIXES)]}"


def export_row(shape: ExportShape, i: int) -> list[str]:
    first, last = _FIRST[i % len(_FIRST)], _LAST[(i // 3) % len(_LAST)]
    if shape.invalid_email(i):
        email = _INVALID_EMAILS[i % len(_INVALID_EMAILS)]
    elif i % 11 == 0:
        email = f"  User.{i}@Example.COM "  # matched trimmed and lower-cased
    else:
        email = f"user.{i}@example.com"
    company = shape.company(i)
    city, country = _CITIES[i % len(_CITIES)]
    return [
        f"U{i:06d}" if shape.has_user_id(i) else "",
        email,
        f"{first} {last}",
        f"+1 (555) {i % 1000:03d}-{i % 10000:04d}" if i % 4 else "",
        f"C{company:05d}" if company is not None else "",
        company_name(company) if company is not None else "",
        STAGES[company % len(STAGES)] if company is not None else "",
        city,
        country,
        ("Free", "Pro", "Enterprise")[i % 3],
        "vip, beta" if i % 6 == 0 else ("newsletter" if i % 6 == 1 else ""),
        f"20{18 + i % 7}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        _NOTES[i % len(_NOTES)] if shape.multi_line(i) else ("Prefers email" if i % 9 else ""),
    ]


def write_export(
    path: Path, rows: int, *, companies: int | None = None, canonical: bool = False
) -> ExportShape:
    """Write the export (UTF-8 with a byte order mark, CRLF) and say what it holds."""
    shape = ExportShape(rows, companies or max(1, rows // 10))
    with path.open("w", newline="", encoding="utf-8-sig") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CANONICAL if canonical else HEADERS)
        for i in range(rows):
            writer.writerow(export_row(shape, i))
    return shape
