"""Billing settings: plan, billing email, seat limit, monthly spend cap."""
