"""Billing: prices, rate decks, rating, invoices, payments, dunning, retention."""
