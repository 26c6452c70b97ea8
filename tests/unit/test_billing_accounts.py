"""Billing accounts' identities and tax status: SIREN, VAT numbers, consistency."""

from __future__ import annotations

import pytest

from graam_pbx.billing.accounts import (
    AccountInput,
    consistency_problems,
    french_vat_key,
    siren_problem,
    vat_problem,
)


def test_sirens_pass_luhns_check() -> None:
    assert siren_problem("732829320") is None
    assert siren_problem("356000000") is None  # La Poste: the one exception
    assert siren_problem("732829321") == "not a SIREN (its check digit is wrong)"
    assert siren_problem("73282932") == "a SIREN is 9 digits"
    assert siren_problem("73282932a") == "a SIREN is 9 digits"


def test_french_vat_numbers_carry_their_key() -> None:
    assert french_vat_key("732829320") == 44
    assert vat_problem("FR44732829320") is None
    assert "check digits" in (vat_problem("FR45732829320") or "")
    assert "FR, 2 check digits" in (vat_problem("FR4473282932") or "")
    assert "FR, 2 check digits" in (vat_problem("FRXX732829320") or "")


@pytest.mark.parametrize("vat", ["DE123456789", "EL123456789", "NL123456789B01", "IE1234567WA"])
def test_other_eu_vat_numbers_take_their_prefix(vat: str) -> None:
    assert vat_problem(vat) is None


@pytest.mark.parametrize("vat", ["GR123456789", "GB123456789", "US12", "DE1", "de123456789"])
def test_anything_else_is_no_eu_vat_number(vat: str) -> None:
    assert vat_problem(vat) is not None


def account(**changes: object) -> AccountInput:
    fields: dict[str, object] = {
        "legal_name": "Acme SAS",
        "address": "1 rue de la Paix, Paris",
        "country": "FR",
        "siren": "732829320",
        "vat_number": "FR44732829320",
        "tax_status": "fr",
        "billing_email": "billing@acme.example",
        "locale": "fr",
    }
    fields.update(changes)
    return AccountInput(**fields)  # type: ignore[arg-type]


def fields_of(data: AccountInput) -> set[str]:
    return {field for field, _ in consistency_problems(data)}


def test_consistent_accounts_pass() -> None:
    assert fields_of(account()) == set()
    assert fields_of(account(siren=None, vat_number=None)) == set()
    assert (
        fields_of(
            account(country="DE", siren=None, vat_number="DE123456789", tax_status="eu_business")
        )
        == set()
    )
    assert (
        fields_of(
            account(country="GR", siren=None, vat_number="EL123456789", tax_status="eu_business")
        )
        == set()
    )
    assert (
        fields_of(account(country="CH", siren=None, vat_number=None, tax_status="outside_eu"))
        == set()
    )
    assert (
        fields_of(account(country="GB", siren=None, vat_number=None, tax_status="outside_eu"))
        == set()
    )


def test_contradictions_are_named() -> None:
    assert fields_of(account(country="DE")) == {"body.siren", "body.country"}
    assert fields_of(account(vat_number="DE123456789")) == {"body.vat_number"}
    assert fields_of(account(siren="552100554")) == {"body.vat_number"}  # another SIREN
    eu = {"siren": None, "tax_status": "eu_business"}
    assert fields_of(account(**eu, country="FR", vat_number="FR44732829320")) == {"body.country"}
    assert fields_of(account(**eu, country="DE", vat_number=None)) == {"body.vat_number"}
    assert fields_of(account(**eu, country="DE", vat_number="IT12345678901")) == {"body.vat_number"}
    assert fields_of(account(**eu, country="CH", vat_number="DE123456789")) == {"body.country"}
    out = {"siren": None, "tax_status": "outside_eu"}
    assert fields_of(account(**out, country="BE", vat_number=None)) == {"body.country"}
    assert fields_of(account(**out, country="US", vat_number="DE123456789")) == {"body.vat_number"}
