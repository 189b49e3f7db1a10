"""Operating the portal: readiness, metrics, request ids in the logs (SPEC §15)."""
