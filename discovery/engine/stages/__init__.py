"""The stages of one round, each idempotent given what the store already holds."""
