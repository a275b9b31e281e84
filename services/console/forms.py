"""The console's forms as plain data: which field of the API each Romanian label edits,
how a submitted form becomes an API body, and how the API's field errors find their way
back next to the right input. No HTTP here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.console import texts


@dataclass(frozen=True)
class Field:
    """One input of a form: the API field it edits, its label, its kind."""

    name: str  # the API field, also the input's name (nested fields: rep_name)
    label: str
    kind: str = "text"  # text | date | int | house | org_type | textarea
    required: bool = False
    hint: str = ""


# "Persoana juridica", in the seed's order; the legal representative is printed on the
# agreement, so it is part of the form too.
PROVIDER_FORM: tuple[Field, ...] = (
    Field("cas", "Casa de asigurari", "house", required=True),
    Field("name", "Nume", required=True),
    Field("description", "Descriere", "textarea"),
    Field("cui", "CUI/CNP", required=True, hint="CUI-ul firmei sau CNP-ul persoanei"),
    Field("code", "Cod", hint="implicit egal cu CUI"),
    Field("cui_date", "Data CUI", "date"),
    Field("org_type", "Tip organizatoric", "org_type"),
    Field("fiscal_attribute", "Atribut fiscal"),
    Field("fiscal_attribute_date", "Data atribut fiscal", "date"),
    Field("trade_register_no", "Nr.Reg.Comert", hint="de exemplu J40/10/3456"),
    Field("registered_on", "Data inregistrarii", "date"),
    Field("country", "Tara", hint="ROM"),
    Field("locality", "Localitate", hint="de exemplu 17913 Bucuresti"),
    Field("currency", "Valuta", hint="RON"),
    Field("print_order", "Ordine printare", "int"),
    Field("valid_from", "Valabil de la", "date"),
    Field("valid_to", "Valabil pana la", "date"),
    Field("work_point", "Punct de lucru"),
    Field("location_type", "Tip locatie"),
    Field("rep_name", "Reprezentant legal"),
    Field("rep_cnp", "CNP reprezentant"),
)
# The form's sections, by the name of their first field (the seed's order is kept).
PROVIDER_SECTIONS: tuple[tuple[str, str], ...] = (
    ("cas", "Identificare"), ("org_type", "Date fiscale si de inregistrare"),
    ("country", "Adresa, valuta si valabilitate"), ("rep_name", "Reprezentant legal (apare in conventie)"),
)


def provider_sections() -> list[tuple[str, list[Field]]]:
    """PROVIDER_FORM cut into its sections: [(title, fields), ...]."""
    starts = dict(PROVIDER_SECTIONS)
    sections: list[tuple[str, list[Field]]] = []
    for field in PROVIDER_FORM:
        if field.name in starts:
            sections.append((starts[field.name], []))
        sections[-1][1].append(field)
    return sections


# Suggestions only: keygen decides what it accepts, and says so next to the field.
ORG_TYPE_SUGGESTIONS = ("CMI", "CMG", "CMA", "SCM", "SRL", "SRL-D", "SA", "SNC", "PFA", "II", "IF",
                        "ONG", "spital", "policlinică", "centru medical", "laborator", "farmacie",
                        "cabinet stomatologic")
_REP = {"rep_name": "name", "rep_cnp": "cnp"}


def provider_values(provider: Mapping[str, Any]) -> dict[str, str]:
    """A provider from the API as the form shows it (dates dd-mm-yyyy, "" for none)."""
    values: dict[str, str] = {}
    for field in PROVIDER_FORM:
        if field.name in _REP:
            rep = provider.get("legal_representative") or {}
            raw = rep.get(_REP[field.name])
        else:
            raw = provider.get(field.name)
        if raw is None:
            values[field.name] = ""
        elif field.kind == "date":
            values[field.name] = texts.show_date(str(raw))
        else:
            values[field.name] = str(raw)
    return values


def provider_body(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A submitted provider form as a full API body (empty fields are null), and the
    errors the console can see by itself (a date not written dd-mm-yyyy, a letter in
    a number), in Romanian."""
    body: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for field in PROVIDER_FORM:
        if field.name in _REP:
            continue
        text = (form.get(field.name) or "").strip()
        if field.kind == "date":
            try:
                body[field.name] = texts.parse_date(text)
            except ValueError as exc:
                problems[field.name] = str(exc)
        elif field.kind == "int":
            if text and not (text.lstrip("-").isdigit() and text.isascii()):
                problems[field.name] = "trebuie sa fie un numar intreg"
            elif len(text.lstrip("-")) > 9:
                problems[field.name] = "este prea mare"
            body[field.name] = int(text) if text and field.name not in problems else None
        else:
            body[field.name] = text or None
    rep = {api: (form.get(name) or "").strip() for name, api in _REP.items()}
    body["legal_representative"] = rep if any(rep.values()) else None
    return body, problems


def provider_changes(current: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The PATCH for what the clerk changed: fields whose value differs from the record."""
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name == "cas":
            continue  # a provider stays in its house; the form shows it read-only
        if (current.get(name) or None) != (value or None):
            changes[name] = value
    return changes


def form_errors(api_errors: Mapping[str, str]) -> dict[str, str]:
    """The API's field errors keyed by the form's input names, in Romanian.

    ``legal_representative.cnp`` lands on ``rep_cnp``; an error about the whole
    representative lands on its name input.
    """
    out: dict[str, str] = {}
    for name, message in api_errors.items():
        if name.startswith("legal_representative."):
            key = {"name": "rep_name", "cnp": "rep_cnp"}.get(name.split(".", 1)[1], "rep_name")
        elif name == "legal_representative":
            key = "rep_name"
        else:
            key = name
        out[key] = texts.field_message(message)
    return out


def has_key(provider: Mapping[str, Any]) -> bool:
    """Whether the provider already has an activation key (Resetare parola applies),
    or not yet (Generare parola applies)."""
    for name in ("has_key", "key_issued", "has_activation_key"):
        if isinstance(provider.get(name), bool):
            return provider[name]
    for name in ("key_issued_at", "key_id", "license_issued_at", "activation_key", "key", "current_key"):
        if provider.get(name):
            return True
    return False


@dataclass(frozen=True)
class Paging:
    """A listing's position: "Numarul total: 2647 (133 pagini)" and the page selector."""

    total: int
    page: int
    per_page: int
    pages: int

    @classmethod
    def of(cls, body: Mapping[str, Any], page: int, per_page: int) -> "Paging":
        total = int(body.get("total") or 0)
        per_page = int(body.get("per_page") or per_page)
        pages = body.get("pages")
        pages = int(pages) if pages is not None else math.ceil(total / per_page)
        return cls(total=total, page=int(body.get("page") or page), per_page=per_page, pages=pages)

    @property
    def summary(self) -> str:
        """The seed's words: "Numarul total: 1 (1 pagina)", "... (133 pagini)"."""
        word = "pagina" if self.pages == 1 else "pagini"
        return f"Numarul total: {self.total} ({self.pages} {word})"

    def window(self, size: int = 7) -> list[int]:
        """The page numbers offered around the current one."""
        if self.pages <= 0:
            return []
        start = max(1, min(self.page - size // 2, self.pages - size + 1))
        return list(range(start, min(self.pages, start + size - 1) + 1))


def page_number(raw: str | None, default: int = 1, maximum: int = 1_000_000) -> int:
    """A page or size typed in a URL; the default when it is not a sensible number."""
    if raw and (len(raw) > 9 or not raw.isascii()):
        return default
    try:
        value = int(raw or default)
    except ValueError:
        return default
    return value if 1 <= value <= maximum else default
