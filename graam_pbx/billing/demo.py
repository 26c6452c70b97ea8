"""What a fresh install bills until the operator sets its own: the demo's prices, a small
rate deck, and the demo tenant's billing account.

Made through billing's own services (the first prices and the first deck take effect at
once: nothing changes for anyone), so the demo obeys every rule an operator's prices do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth.principal import Principal
from graam_pbx.billing import accounts, decks, prices

DEMO_PLAN = "standard"  # the plan every new tenant is on (tenants.plan's default)
DEMO_SIREN = "732829320"
# Monthly prices: the plan, each user, each licence, each number by country and type.
DEMO_PRICES: tuple[tuple[str, str | None, str | None, str], ...] = (
    ("plan", None, None, "29.00"),
    ("user", None, None, "5.00"),
    ("licence", None, None, "15.00"),
    ("number", "FR", "geographic", "1.50"),
    ("number", "FR", "national", "1.00"),
    ("number", "FR", "mobile", "3.00"),
    ("number", "FR", "toll_free", "5.00"),
)
# Outbound prices per minute from anywhere: prefix, destination country, number type, price.
DEMO_DECK = """prefix,destination_country,origin_country,number_type,price_per_minute,connect_fee
33,FR,,,0.0100,0
336,FR,,mobile,0.0500,0
337,FR,,mobile,0.0500,0
338,FR,,,0.1000,0
44,GB,,,0.0200,0
447,GB,,mobile,0.0800,0
49,DE,,,0.0200,0
1,US,,,0.0150,0
"""


async def seed_demo_billing(
    session: AsyncSession, operator: Principal, tenant_id: int, *, zone: ZoneInfo
) -> None:
    """The demo's prices and deck, and the demo tenant's billing account (subscribed today)."""
    today = datetime.now(UTC).astimezone(zone).date()
    for item, country, kind, amount in DEMO_PRICES:
        await prices.publish_price(
            session,
            operator,
            prices.PriceInput(
                item=item,
                plan_code=DEMO_PLAN if item == "plan" else None,
                country=country,
                number_type=kind,
                amount=Decimal(amount),
                currency="EUR",
                effective_on=today,
            ),
        )
    await decks.publish_deck(
        session, operator, name="Demo rates", activates_at=None, csv_text=DEMO_DECK
    )
    await accounts.write_account(
        session,
        operator,
        tenant_id,
        accounts.AccountInput(
            legal_name="Demo Centre d'Appels SAS",
            address="10 rue de la Démo\n75010 Paris",
            country="FR",
            siren=DEMO_SIREN,
            vat_number=f"FR{accounts.french_vat_key(DEMO_SIREN):02d}{DEMO_SIREN}",
            tax_status="fr",
            billing_email="billing@demo.example",
            locale="fr",
            subscribed_on=date(today.year, today.month, today.day),
        ),
        None,
        zone=zone,
    )
