"""Praesidia portal: the multi-tenant web control plane of an AI-agent platform."""
