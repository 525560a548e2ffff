"""What operators watch: logs, metrics, health and readiness, and the audit trail."""
