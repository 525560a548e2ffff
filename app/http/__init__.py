"""The request plumbing: errors, JSON:API bodies and nesting, body limits, request ids,
telemetry, and the bearer check of protected routes."""
