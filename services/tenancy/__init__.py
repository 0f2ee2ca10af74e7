"""Tenancy: accounts, tenants, tenant mapping codes and the accounts' data keys."""
