"""Every domain's models, imported once so ``Base.metadata`` knows every table."""

from graam_pbx.tenants.models import Tenant

__all__ = ["Tenant"]
